"""``DASHBOARD_*`` settings of the dashboard."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orderflow.settings import KafkaSettings

FeedMode = Literal["lazy", "eager", "off"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    host: str = "0.0.0.0"
    port: int = 8050
    threads: int = Field(8, ge=1, description="gthread threads of the single gunicorn worker")
    max_orders: int = Field(200, ge=1, le=100_000,
                            description="latest orders kept in memory; also the history read back per partition")
    refresh_ms: int = Field(1000, ge=200, description="how often the page fetches /api/state")
    feed_mode: FeedMode = Field(
        "lazy", description="lazy: the Kafka reader starts on the first request; eager: in create_app; off: never",
    )
    log_level: str = "INFO"
