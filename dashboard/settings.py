"""``DASHBOARD_*`` settings of the dashboard."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings

FeedMode = Literal["lazy", "eager", "off"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)  # STORE_DATABASE_URL, read-only here
    host: str = Field("127.0.0.1", description="address to listen on; the pages show customers' data and ask "
                      "for no password, so only this machine by default")
    port: int = 8050
    threads: int = Field(16, ge=2, description="gthread threads of the single gunicorn worker")
    max_streams: int | None = Field(None, ge=1, description="live streams at once (each holds a thread while "
                                    "open); default threads - 4, so pages and /api/state always have threads left")
    max_orders: int = Field(200, ge=1, le=100_000,
                            description="latest orders kept in memory, read from the order store at start")
    store_poll_ms: int = Field(300, ge=50, description="how often the order store is asked for what changed")
    refresh_ms: int = Field(1000, ge=200, description="how often the page polls /api/state without a stream")
    stream_interval_ms: int = Field(500, ge=50, description="a stream sends changes at most this often")
    stream_heartbeat_seconds: float = Field(10, gt=0, description="a comment on a quiet stream (finds gone clients)")
    stream_max_seconds: float = Field(300, gt=0, description="a stream ends after this; the browser reconnects")
    lag_seconds: float = Field(5, ge=0, description="how often consumer lag is measured; 0: never")
    chart_window_seconds: int = Field(300, ge=10, le=3600, description="the orders-per-second chart's window")
    orders_api_url: str = Field("http://127.0.0.1:5002", description="where the shop page sends POST /order")
    feed_mode: FeedMode = Field(
        "lazy", description="lazy: the readers (order store, Kafka) start on the first request; eager: in "
        "create_app; off: never",
    )
    log_level: str = "INFO"
    operator: str = Field("operator", description="the operator's login name")
    operator_password_hash: SecretStr | None = Field(
        None, description="the operator's password, hashed (python -m dashboard.password); unset: nobody can log in")
    secret_key: SecretStr | None = Field(None, description="signs the login cookie; unset: a random one per start, "
                                         "so a restart logs everyone out")
    cookie_secure: bool = Field(True, description="the login cookie only over HTTPS; false for a plain local run")
    session_hours: float = Field(12, gt=0, description="how long a login lasts")

    @model_validator(mode="after")
    def _streams_leave_threads(self) -> Settings:
        if self.max_streams is None:
            self.max_streams = max(1, self.threads - 4)
        if self.max_streams >= self.threads:
            raise ValueError("max_streams must be below threads: a thread must stay free for pages")
        url = urlsplit(self.orders_api_url)
        if url.scheme not in ("http", "https") or not url.netloc or not re.fullmatch(r"[\w.:\[\]@-]+", url.netloc):
            raise ValueError("orders_api_url must be an http(s) URL such as http://127.0.0.1:5002")
        self.orders_api_url = self.orders_api_url.rstrip("/")
        return self

    @property
    def orders_api_origin(self) -> str:
        """The orders API's origin, which the pages' Content-Security-Policy lets scripts connect to."""
        url = urlsplit(self.orders_api_url)
        return f"{url.scheme}://{url.netloc}"
