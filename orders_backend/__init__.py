"""The orders API: validates ``POST /order`` and publishes it to ``order_details``."""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use only: gunicorn's config imports orders_backend.settings in the master, which
    # must not import prometheus_client before PROMETHEUS_MULTIPROC_DIR is set (see gunicorn_conf).
    if name == "create_app":
        from orders_backend.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
