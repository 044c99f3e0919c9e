from order_projector.main import main

main()
