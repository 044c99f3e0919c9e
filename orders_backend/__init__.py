"""The orders API: validates ``POST /order`` and publishes it to ``order_details``."""
