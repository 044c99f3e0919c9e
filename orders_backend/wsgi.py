"""What gunicorn serves."""

from orders_backend.app import create_app

app = create_app()
