"""Errors the services share, apart from any client library."""

from __future__ import annotations


class RetryLater(Exception):
    """An edge is down (an SMTP server, say): the stage rewinds the batch and tries it again later."""


class ServiceUnavailable(Exception):
    """A request cannot be served now (Kafka or the order store out of reach): answered 503 with
    ``Retry-After``; ``fields`` go into the JSON body beside the message."""

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
