from transactions_backend.main import main

main()
