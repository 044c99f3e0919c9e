"""Event contracts: the one source of truth for every message on every topic.

Money is ``Decimal`` everywhere and travels as a JSON string. Every event
carries ``event_id``, ``occurred_at`` (UTC) and ``schema_version``; events
about one order also carry its ``order_id`` (which is the Kafka key).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StrictInt,
    computed_field,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
MAX_PRICE = Decimal("1000000")
MAX_QUANTITY = 10_000
MAX_ITEMS = 100
CENT = Decimal("0.01")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _id_from_str_or_int(value: object) -> object:
    # Clients often send numeric ids; they are identifiers, not numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Identifier = Annotated[
    str,
    BeforeValidator(_id_from_str_or_int),
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]
Money = Annotated[Decimal, Field(gt=0, le=MAX_PRICE, max_digits=12, decimal_places=2)]


def _strip(value: str) -> str:
    return value.strip()


# Any timezone is accepted on input; every time is held and written in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]

ProductName = Annotated[str, AfterValidator(_strip), Field(min_length=1, max_length=200)]

# An address already checked in full (``EmailStr``, by the API) and carried on by events: only its
# shape is checked again: email-validator costs more than the rest of an order's parse, and every stage
# parses every order (bench/README.md, "What moved the figures").
# Characters that would turn the address into a list, a display name or a route in a header are refused.
EmailAddress = Annotated[str, Field(min_length=3, max_length=320,
                                    pattern=r'^[^@\s,;:<>()"\[\]\\]+@[^@\s,;:<>()"\[\]\\]+$',
                                    json_schema_extra={"format": "email"})]


class Contract(BaseModel):
    """Base of request bodies: unknown fields are an error the client should hear about."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class LineItem(Contract):
    product: ProductName
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]
    unit_price: Money

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity


class OrderDetails(Contract):
    """Either a single ``price`` for the whole order or a list of ``items``."""

    price: Money | None = None
    items: Annotated[list[LineItem], Field(min_length=1, max_length=MAX_ITEMS)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"

    @model_validator(mode="after")
    def _price_or_items(self) -> OrderDetails:
        if (self.price is None) == (self.items is None):
            raise ValueError("give either 'price' or 'items', not both and not neither")
        return self

    @property
    def total(self) -> Decimal:
        if self.items is not None:
            return sum((item.subtotal for item in self.items), Decimal("0")).quantize(CENT)
        assert self.price is not None
        return self.price.quantize(CENT)


class CardPayment(Contract):
    """Card details as a client sends them; only the last four digits are ever published."""

    card_number: Annotated[str, BeforeValidator(lambda v: re.sub(r"[ -]", "", v) if isinstance(v, str) else v),
                           Field(pattern=r"^\d{12,19}$")]
    expiry: Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])/\d{2}$", examples=["12/29"])]


# The example order of the OpenAPI document (no order_id: each try is a new order).
ORDER_EXAMPLE: dict[str, Any] = {
    "user_id": "u-42",
    "user_email": "ada@example.com",
    "order_details": {"items": [{"product": "Oak chair", "quantity": 4, "unit_price": "89.90"},
                                {"product": "Dining table", "quantity": 1, "unit_price": "449.00"}]},
    "payment": {"card_number": "4111 1111 1111 1111", "expiry": "12/35"},
}


class OrderRequest(Contract):
    """Body of ``POST /order``. ``order_id`` may be omitted: the server then makes one."""

    model_config = ConfigDict(json_schema_extra={"examples": [ORDER_EXAMPLE]})

    user_id: Identifier
    order_id: Identifier | None = None
    user_email: EmailStr
    order_details: OrderDetails
    payment: CardPayment | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_client_time(cls, data: object) -> object:
        # ``time`` is set by the server; a copy sent by a client is ignored.
        if isinstance(data, dict) and "time" in data:
            data = {k: v for k, v in data.items() if k != "time"}
        return data


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


class OrderDetailsRecord(OrderDetails):
    """Order details as stored in events (see ``LineItemRecord``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

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
    """Topic ``order_email_sent``: what happened to the confirmation email of one order."""

    order_id: Identifier
    status: Literal["sent", "failed"]
    recipient: str
    message_id: str
    attempts: int
    error: str | None = None


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

    @computed_field  # type: ignore[prop-decorator]
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
