"""The live dashboard: counts, revenue and the latest orders, read from Kafka."""

from dashboard.app import create_app

__all__ = ["create_app"]
