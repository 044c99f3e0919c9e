"""``OrderRow``: one order as the store holds it, the shape every reader gets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from orderflow.events import EmailOutcome, OrderPlaced, OrderVerdict

Status = Literal["received", "confirmed", "rejected"]
EmailStatus = Literal["sent", "failed"]
Cursor = tuple[datetime, str]  # (placed_at, order_id): where a page of orders ends


@dataclass(frozen=True)
class OrderRow:
    """One ``order_id``'s latest state, built from its events in the three order topics.

    Until the projector has read an event that carries the order (its ``OrderPlaced``, or its verdict,
    which carries the whole order), ``placed_at``, ``user_id``, ``total_cents`` and ``currency`` are
    ``None``: a row can start with an email outcome read before its order. ``user_email`` is then
    the email's recipient.

    order_id, user_id, user_email   as in the order (``OrderPlaced``)
    status            ``received`` until a verdict is read, then ``confirmed`` or ``rejected``
    reason            why it was rejected (the verdict's reason)
    total_cents       the order's total in cents (``total`` gives it as ``Decimal``); currency its ISO code
    placed_at         the order's ``time``; decided_at, emailed_at the verdict's and the email's
                      ``occurred_at`` (all aware, UTC)
    email_status      ``sent``, ``failed`` or ``None`` (no outcome yet); email_attempts, email_error as reported
    placed_event_id   the ``event_id`` of the order (of the verdict's copy until the placement is read)
    placed_partition, placed_offset   where in ``order_details`` the first placement of this id is
    placed_json       that first ``OrderPlaced`` exactly as written (the answer to a repeated POST);
                      ``None`` until the placement itself is read
    verdict_json, email_json        the first verdict and email outcome read for this id, as written
    seq               the change number of the row's last write (``OrderStore.changed_since``)
    """

    order_id: str
    status: Status = "received"
    reason: str | None = None
    user_id: str | None = None
    user_email: str | None = None
    total_cents: int | None = None
    currency: str | None = None
    placed_at: datetime | None = None
    decided_at: datetime | None = None
    emailed_at: datetime | None = None
    email_status: EmailStatus | None = None
    email_attempts: int | None = None
    email_error: str | None = None
    placed_event_id: str | None = None
    placed_partition: int | None = None
    placed_offset: int | None = None
    placed_json: str | None = None
    verdict_json: str | None = None
    email_json: str | None = None
    seq: int = 0

    @classmethod
    def from_mapping(cls, values: Any) -> OrderRow:
        """A row as the database returns it (a SQLAlchemy ``RowMapping``)."""
        return cls(**dict(values))

    def as_values(self) -> dict[str, Any]:
        """The row as column values."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @property
    def total(self) -> Decimal | None:
        """The total as ``Decimal`` to the cent (``Decimal("19.99")``)."""
        return None if self.total_cents is None else Decimal(self.total_cents).scaleb(-2)

    @property
    def cursor(self) -> Cursor | None:
        """Where this row sits in the newest-first order: pass it as ``OrderStore.page(before=...)``."""
        return None if self.placed_at is None else (self.placed_at, self.order_id)

    @property
    def placed(self) -> bool:
        """Whether the first ``OrderPlaced`` of this id has been read (what ``received`` counts)."""
        return self.placed_json is not None

    def placement(self) -> OrderPlaced | None:
        """The first ``OrderPlaced`` written under this id, once read."""
        return None if self.placed_json is None else OrderPlaced.model_validate_json(self.placed_json)

    def order(self) -> OrderPlaced | None:
        """The order: its placement, or the copy its verdict carries when that was read first."""
        placement = self.placement()
        if placement is not None:
            return placement
        verdict = self.verdict()
        return None if verdict is None else verdict.order

    def verdict(self) -> OrderVerdict | None:
        return None if self.verdict_json is None else OrderVerdict.model_validate_json(self.verdict_json)

    def email(self) -> EmailOutcome | None:
        return None if self.email_json is None else EmailOutcome.model_validate_json(self.email_json)
