from analytics_backend.main import main

main()
