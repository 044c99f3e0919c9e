"""Event contracts: the one source of truth for every message on every topic.

Money is ``Decimal`` everywhere and travels as a JSON string. Every event
carries ``event_id``, ``occurred_at`` (UTC) and ``schema_version``; events
about one order also carry its ``order_id`` (which is the Kafka key).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, computed_field, field_validator

from orderflow.fields import CENT, MAX_PRICE, MAX_QUANTITY, Identifier, Money
from orderflow.order_request import (
    MAX_ITEMS,
    ORDER_EXAMPLE,
    SEED_EXAMPLE,
    CardPayment,
    DetailsBase,
    LineItem,
    OrderDetails,
    OrderRequest,
)

# The request models and field types are re-exported: this module names every contract.
__all__ = ["CENT", "MAX_ITEMS", "MAX_PRICE", "MAX_QUANTITY", "ORDER_EXAMPLE", "SEED_EXAMPLE", "CardPayment",
           "Identifier", "LineItem", "Money", "OrderDetails", "OrderRequest"]

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


# Any timezone is accepted on input; every time is held and written in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]

# An address already checked in full (``EmailStr``, by the API) and carried on by events: only its
# shape is checked again: email-validator costs more than the rest of an order's parse, and every stage
# parses every order (bench/README.md, "What moved the figures").
# Characters that would turn the address into a list, a display name or a route in a header are refused.
EmailAddress = Annotated[str, Field(min_length=3, max_length=320,
                                    pattern=r'^[^@\s,;:<>()"\[\]\\]+@[^@\s,;:<>()"\[\]\\]+$',
                                    json_schema_extra={"format": "email"})]


class Event(BaseModel):
    """Base of every message. Readers ignore fields they do not know (forward compatible)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: UtcDatetime = Field(default_factory=utcnow)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class PaymentSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    card_last4: str
    expiry: str
    luhn_valid: bool


class LineItemRecord(LineItem):
    """A line as stored in events: same rules, but fields added by a newer writer are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class OrderDetailsRecord(DetailsBase):
    """Order details as stored in events: the shop's own fields are carried as they came."""

    model_config = ConfigDict(frozen=True, extra="allow")

    # A narrower item type than the base's, which pydantic allows and mypy cannot tell is safe here.
    items: Annotated[list[LineItemRecord], Field(min_length=1, max_length=MAX_ITEMS)] | None = None  # type: ignore[assignment]


class OrderPlaced(Event):
    """Topic ``order_details``: an order accepted by the API."""

    order_id: Identifier
    user_id: Identifier
    user_email: EmailAddress
    order_details: OrderDetailsRecord
    total: Decimal
    payment: PaymentSummary | None = None
    time: UtcDatetime

    @field_validator("order_details", mode="before")
    @classmethod
    def _from_request(cls, value: object) -> object:
        # The API hands over the request's (strict) details; events hold the tolerant kind.
        return value.model_dump() if isinstance(value, OrderDetails) else value


Status = Literal["confirmed", "rejected"]


class OrderVerdict(Event):
    """Topic ``order_confirmed``: the verdict on one order; rejections carry a reason."""

    order_id: Identifier
    status: Status
    reason: str | None = None
    order: OrderPlaced


class EmailOutcome(Event):
    """Topic ``order_email_sent``: what happened to the confirmation email of one order, and what was
    ordered (the details as the shop sent them; absent from outcomes written before they were carried)."""

    order_id: Identifier
    status: Literal["sent", "failed"]
    recipient: str
    message_id: str
    attempts: int
    error: str | None = None
    order_details: OrderDetailsRecord | None = None


class EmailSent(Event):
    """Topic ``email_sent_log`` (compacted): what SMTP did with this order's email, noted before the
    outcome is recorded, so a restart records it instead of sending again."""

    order_id: Identifier
    status: Literal["sent", "failed"] = "sent"
    message_id: str
    attempts: int
    error: str | None = None


class DayTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    orders: int = 0
    revenue: Decimal = Decimal("0.00")


class Totals(BaseModel):
    """Running totals over confirmed orders. A pure value: folding returns a new one."""

    model_config = ConfigDict(frozen=True)

    orders_count: int = 0
    rejected_count: int = 0
    revenue: Decimal = Decimal("0.00")
    per_day: dict[date, DayTotals] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form over a property
    @property
    def average_order_value(self) -> Decimal:
        if not self.orders_count:
            return Decimal("0.00")
        return (self.revenue / self.orders_count).quantize(CENT)


class AnalyticsSnapshot(Event):
    """Topic ``analytics_result`` (compacted): totals of one partition of ``order_confirmed``.

    The key is the ``scope`` (``order_confirmed/<partition>``); the latest value per key is the
    truth and the global figures are the sum over keys (``orderflow.analytics.merge``).
    ``as_of_offset`` is the next offset of that partition still to be folded in.
    """

    scope: str
    partition: int
    as_of_offset: int
    totals: Totals
