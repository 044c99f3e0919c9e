"""order_projector: ``order_details``, ``order_confirmed``, ``order_email_sent`` -> the order store."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from order_projector.projector import Projector
from orderflow import metrics
from orderflow.kafka import access_at_start, ensure_topics
from orderflow.settings import ConsumerServiceSettings, configure_logging
from orderflow.stopflag import StopFlag
from orderflow.store import StoreSettings


class Settings(ConsumerServiceSettings):
    """``PROJECTOR_*`` (health file, log level, metrics) beside ``KAFKA_*`` and ``STORE_*``."""

    model_config = SettingsConfigDict(env_prefix="PROJECTOR_")
    DEFAULT_METRICS_PORT: ClassVar[int] = 9104

    store: StoreSettings = Field(default_factory=StoreSettings)
    progress_seconds: float = Field(5.0, gt=0, description="how often a rebuild or catch-up logs its progress")


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    access_at_start(settings.kafka)
    metrics.serve(settings, metrics.STAGE)
    ensure_topics(settings.kafka)
    Projector(settings.kafka, settings.store, health_file=settings.health_file,
              progress_seconds=settings.progress_seconds, stop=StopFlag().install()).run()
