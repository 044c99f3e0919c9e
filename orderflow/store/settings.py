"""``STORE_*``: where the order store lives. Read once in a service's ``main()``/``create_app()``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Relative to the working directory: `make run` and the services start in the repository's root,
# so the store sits beside the other run files in .run/.
DEFAULT_DATABASE_URL = "sqlite:///.run/orders.sqlite3"


class StoreSettings(BaseSettings):
    """``STORE_DATABASE_URL``: an SQLAlchemy URL. ``sqlite:///<path>`` (relative to the working
    directory; ``sqlite:////<absolute path>``) is an embedded file in WAL mode, the default;
    ``postgresql+psycopg://user:password@host:port/database`` is a PostgreSQL server, for readers on
    several hosts."""

    model_config = SettingsConfigDict(env_prefix="STORE_")

    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the order store")
    busy_timeout_ms: int = Field(10_000, ge=0, description="SQLite: how long a statement waits for another "
                                 "connection's lock before it fails")
