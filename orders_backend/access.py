"""Who may see an order's personal data: its owner, proved by an API key; everyone else a public view.

API keys rather than tokens: each customer (a ``user_id``) is given a random key, and only its SHA-256
is configured (``ORDERS_API_KEYS=u-1=<sha256>,u-2=<sha256>``), so the settings never hold a usable
secret, a key is revoked by removing its line, and nothing has to share a signing secret with the API.
Keys are high-entropy random strings, so a plain hash is what protects them at rest.

Without keys configured (``make run``) the API is open, and every answer about an order that was not
just placed by the caller is the public view: status, timeline and totals, never the customer's
address, card digits or card expiry.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from flask import Request

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return secrets.token_urlsafe(32)


def presented_key(request: Request) -> str | None:
    """The key a request carries: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("X-API-Key") or None


class ApiKeys:
    """The configured keys, by hash: ``user_id=sha256hex`` pairs separated by commas."""

    def __init__(self, spec: str) -> None:
        self._owner: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            user_id, _, digest = entry.partition("=")
            if not user_id or not SHA256_HEX.fullmatch(digest):
                raise ValueError("ORDERS_API_KEYS holds user_id=<sha256 hex of the key> pairs separated by "
                                 f"commas; {entry[:20]!r}... is not one")
            self._owner[digest] = user_id

    @property
    def required(self) -> bool:
        return bool(self._owner)

    def owner(self, key: str | None) -> str | None:
        """The customer a key belongs to, or None (no key, or not a configured one)."""
        return None if key is None else self._owner.get(key_hash(key))


def public_order(order: dict[str, Any]) -> dict[str, Any]:
    """An order (``OrderPlaced`` as JSON) without the customer's address and card details."""
    return {k: v for k, v in order.items() if k not in ("user_email", "payment")}


def public_status(status: dict[str, Any]) -> dict[str, Any]:
    """``GET /order/<id>``'s answer for anyone but the owner: status, timeline and totals only."""
    email = status.get("email")
    return {**status, "order": public_order(status["order"]),
            "email": None if email is None else {k: v for k, v in email.items() if k not in ("recipient", "error")}}
