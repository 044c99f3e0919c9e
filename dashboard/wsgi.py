"""What gunicorn serves."""

from dashboard.app import create_app

app = create_app()
