"""What the project's Flask apps answer alike: JSON problems, the 503 with ``Retry-After``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify


def problem(status: int, error: str, **fields: Any) -> Response:
    """A JSON error body: a short ``error`` and, mostly, a ``message`` saying what to do."""
    response = jsonify({"error": error, **fields})
    response.status_code = status
    return response


def unavailable(message: str, retry_after: int, **fields: Any) -> Response:
    """503: try again after ``retry_after`` seconds."""
    response = problem(503, "Service Unavailable", message=message, **fields)
    response.headers["Retry-After"] = str(retry_after)
    return response
