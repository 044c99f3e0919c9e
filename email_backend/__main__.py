from email_backend.main import main

main()
