"""The body of ``POST /order``: strict on what the pipeline computes with, bounded on the rest.

``orderflow.events`` re-exports these models, so one module names every contract.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from orderflow.fields import (
    CENT,
    DETAIL_KEYS,
    EmailAddressIn,
    Identifier,
    Money,
    ProductName,
    Quantity,
    free_form_fields,
    free_form_schema,
)
from orderflow.jsonbody import loads

MAX_ITEMS = 100
MAX_DETAIL_FIELDS = 3 + DETAIL_KEYS  # price, items and currency, and the shop's own


class Contract(BaseModel):
    """Base of request bodies: unknown fields are an error the client should hear about."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class LineItem(Contract):
    product: ProductName
    quantity: Quantity
    unit_price: Money

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity


class DetailsBase(BaseModel):
    """What we compute with in an order's details: a single ``price`` for the whole order or a list
    of ``items``, and the ``currency``. Anything else a shop sends is carried along unread."""

    price: Money | None = None
    items: Annotated[list[LineItem], Field(min_length=1, max_length=MAX_ITEMS)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"

    @model_validator(mode="after")
    def _price_or_items(self) -> DetailsBase:
        if (self.price is None) == (self.items is None):
            raise ValueError("give either 'price' or 'items', not both and not neither")
        return self

    @property
    def total(self) -> Decimal:
        if self.items is not None:
            return sum((item.subtotal for item in self.items), Decimal("0")).quantize(CENT)
        assert self.price is not None
        return self.price.quantize(CENT)

    @property
    def extras(self) -> dict[str, Any]:
        """The fields a shop sent beside price, items and currency (product, size, notes, ...)."""
        return dict(self.model_extra or {})


def _details_schema(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = free_form_schema()
    schema["maxProperties"] = MAX_DETAIL_FIELDS
    schema["oneOf"] = [
        {"required": ["price"], "properties": {"price": {"not": {"type": "null"}}, "items": {"type": "null"}}},
        {"required": ["items"], "properties": {"items": {"not": {"type": "null"}}, "price": {"type": "null"}}}]


class OrderDetails(DetailsBase, Contract):
    """``order_details`` of ``POST /order``: strict on what we compute with, bounded on the rest."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_details_schema)

    @model_validator(mode="before")
    @classmethod
    def _bounded_extras(cls, data: object) -> object:
        if isinstance(data, dict):
            extras = {k: v for k, v in data.items() if k not in cls.model_fields}
            if extras:
                data = {**data, **free_form_fields(extras, "order_details", MAX_DETAIL_FIELDS - len(data))}
        return data


def _without_separators(value: object) -> object:
    return value.replace(" ", "").replace("-", "") if isinstance(value, str) else value


CARD_PATTERN = r"^[0-9](?:[ -]?[0-9]){11,18}$"  # 12 to 19 digits, spaces or hyphens between them


class CardPayment(Contract):
    """Card details as a client sends them; only the last four digits are ever published."""

    card_number: Annotated[str, Field(pattern=r"^[0-9]{12,19}$"), BeforeValidator(_without_separators),
                           WithJsonSchema({"type": "string", "pattern": CARD_PATTERN})]
    expiry: Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])/[0-9]{2}$", examples=["12/29"])]


# The example orders of the OpenAPI document (no order_id: each try is a new order).
ORDER_EXAMPLE: dict[str, Any] = {
    "user_id": "u-42",
    "user_email": "ada@example.com",
    "order_details": {"items": [{"product": "Oak chair", "quantity": 4, "unit_price": "89.90"},
                                {"product": "Dining table", "quantity": 1, "unit_price": "449.00"}]},
    "payment": {"card_number": "4111 1111 1111 1111", "expiry": "12/35"},
}
SEED_EXAMPLE: dict[str, Any] = {
    "user_id": "u-1",
    "user_email": "a@example.com",
    "order_details": {"product": "chair", "quantity": 1, "price": 19.99},
}


def _request_schema(schema: dict[str, Any]) -> None:
    schema["examples"] = [ORDER_EXAMPLE, SEED_EXAMPLE]
    schema["properties"]["time"] = {"description": "ignored: the server sets the order's time"}


class OrderRequest(Contract):
    """Body of ``POST /order``. ``order_id`` may be omitted: the server then makes one."""

    model_config = ConfigDict(json_schema_extra=_request_schema)

    user_id: Identifier
    order_id: Identifier | None = None
    user_email: EmailAddressIn
    order_details: OrderDetails
    payment: CardPayment | None = None

    @classmethod
    def from_json(cls, body: bytes) -> OrderRequest:
        """The request in ``body``, its numbers read exactly; ``MalformedJson`` or ``ValidationError``."""
        return cls.model_validate(loads(body))

    @model_validator(mode="before")
    @classmethod
    def _drop_client_time(cls, data: object) -> object:
        # ``time`` is set by the server; a copy sent by a client is ignored.
        if isinstance(data, dict) and "time" in data:
            data = {k: v for k, v in data.items() if k != "time"}
        return data
