"""``ORDERS_*`` settings of the orders API."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orderflow.settings import KafkaSettings
from orderflow.store import StoreSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    host: str = "0.0.0.0"
    port: int = 5002
    workers: int = Field(2, ge=1)
    threads: int = Field(16, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="larger bodies get 413")
    publish_timeout_seconds: float = Field(5.0, gt=0, description="wait for the broker's ack this long")
    retry_after_seconds: int = Field(5, ge=1, description="Retry-After on 503")
    log_level: str = "INFO"
    cors_origins: str = Field("", description="comma-separated origins allowed to call the API from a browser; "
                              "empty: CORS off")
    api_keys: str = Field("", description="user_id=<sha256 of the key> pairs, comma-separated; when set, POST and "
                          "GET /order need a key, and a key reads only its own customer's orders")
    rate_limit: str = Field("100/second;3000/minute", description="per client (key or address) on POST /order, in "
                            "Flask-Limiter's notation; empty: no limit")
    rate_limit_storage: str = Field("", description="where the counters live: sqlite:///<file> shared by this "
                                    "API's workers (default: a file gunicorn's master makes), or redis://...")

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
