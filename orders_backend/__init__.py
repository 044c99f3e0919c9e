"""The orders API: validates ``POST /order`` and publishes it to ``order_details``."""

from orders_backend.app import create_app

__all__ = ["create_app"]
