"""What the project's Flask apps answer alike: JSON problems, the 503 with ``Retry-After``."""

from __future__ import annotations

import json
import socket
from typing import Any

from flask import Response, jsonify
from gunicorn import util as gunicorn_util
from werkzeug.exceptions import HTTPException


def problem(status: int, error: str, **fields: Any) -> Response:
    """A JSON error body: a short ``error`` and, mostly, a ``message`` saying what to do."""
    response = jsonify({"error": error, **fields})
    response.status_code = status
    return response


def http_problem(exc: HTTPException) -> Response:
    """A werkzeug HTTP error as a JSON problem, keeping the headers it carries (``Allow`` on a 405)."""
    response = problem(exc.code or 500, exc.name, message=exc.description)
    response.headers.extend([(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"])
    return response


def unavailable(message: str, retry_after: int, **fields: Any) -> Response:
    """503: try again after ``retry_after`` seconds."""
    response = problem(503, "Service Unavailable", message=message, **fields)
    response.headers["Retry-After"] = str(retry_after)
    return response


def json_error_page(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` (for a request it refuses before the app sees it: a URL or a
    header too long, a malformed request line) writing the apps' JSON problem instead of an HTML page."""
    body = json.dumps({"error": reason, "message": mesg}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    gunicorn_util.write_nonblock(sock, head + body)


def answer_gunicorn_errors_as_json() -> None:
    """In a gunicorn worker: every error page gunicorn writes itself becomes a JSON problem. Its
    workers call ``util.write_error`` by name, the one place all of those pages come from."""
    gunicorn_util.write_error = json_error_page
