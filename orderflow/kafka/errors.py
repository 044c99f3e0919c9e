"""What can go wrong with Kafka, in the words the services use.

kafka-python's own exception classes stay behind this module: services catch ``KafkaError``
(re-exported here) or the project's own classes below, and ask ``fenced``/``describe`` rather than
read a client's state.
"""

from __future__ import annotations

from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
)

__all__ = [
    "BrokerUnavailable", "KafkaConnectionError", "KafkaError", "KafkaTimeoutError",
    "ProducerFencedError", "SaslAuthenticationFailedError", "TopicAlreadyExistsError", "describe", "fenced",
]


class BrokerUnavailable(Exception):
    """The broker did not acknowledge a write in time: nothing may be promised to the caller."""


def fenced(exc: BaseException) -> bool:
    """Whether another replica with our transactional id took over. After a fence, kafka-python
    answers every transactional call with a plain ``KafkaError`` whose text names the first error."""
    return isinstance(exc, ProducerFencedError) or "ProducerFenced" in str(exc)


def describe(exc: BaseException) -> str:
    """One line naming the error: kafka-python's errors name themselves, others get their class name."""
    text, name = str(exc), type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"
