"""The field types of the contracts, each with the JSON Schema that says exactly what it accepts.

What a request may hold is published as the API's OpenAPI document, and a fuzzer holds the API to
it both ways: every value the schema allows is accepted, every value it forbids is refused. So each
type here that converts or checks more than pydantic's defaults carries its own ``WithJsonSchema``.
Digits are ASCII everywhere (``Decimal()`` and ``\\d`` take any script's digits).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, EmailStr, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

MAX_PRICE = Decimal("1000000")
CENT = Decimal("0.01")

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
ID_MAX = 64


def _id_from_number(value: object) -> object:
    # Clients often send numeric ids; they are identifiers, not numbers. JSON Schema's "integer" is
    # any number without a fraction, 7 and 7.0 alike.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return value


_ID = re.compile(ID_PATTERN, re.ASCII)


def is_identifier(text: str) -> bool:
    """Whether ``text`` can be an id (an order's, a user's): what ``Identifier`` accepts as a string."""
    return len(text) <= ID_MAX and _ID.fullmatch(text) is not None


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN),
    BeforeValidator(_id_from_number),
    WithJsonSchema({"anyOf": [
        {"type": "string", "minLength": 1, "maxLength": ID_MAX, "pattern": ID_PATTERN},
        {"type": "integer", "minimum": 0, "maximum": 10 ** ID_MAX - 1}]}),
]

# An address as email-validator checks it: an RFC 5322 address that can be delivered, so not at a
# special-use name (RFC 6761: .test, .local, ...), and at most 254 characters.
_SPECIAL_USE = "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in name)
                        for name in ("arpa", "invalid", "local", "localhost", "onion", "test"))
EmailAddressIn = Annotated[EmailStr, WithJsonSchema({
    "type": "string", "format": "email", "maxLength": 254, "not": {"pattern": rf"\.(?:{_SPECIAL_USE})\.?$"}})]

# A price as text: plain decimal notation, at most two decimals, more than 0 and at most MAX_PRICE.
MONEY_PATTERN = r"^(?:[1-9][0-9]{0,5}(?:\.[0-9]{1,2})?|1000000(?:\.0{1,2})?|0?\.(?:0[1-9]|[1-9][0-9]?))$"
_MONEY_TEXT = re.compile(MONEY_PATTERN)


def _money_in(value: object) -> object:
    if isinstance(value, float):  # a Python caller's float: the number as written, not its binary value
        return Decimal(repr(value))
    if isinstance(value, str):
        if not _MONEY_TEXT.fullmatch(value):  # fullmatch: "$" also matches before a final "\n"
            raise PydanticCustomError("money_format", "write an amount as 19.99: ASCII digits, at most two "
                                      "decimals, more than 0 and at most 1000000")
        return Decimal(value)
    return value


Money = Annotated[
    Decimal,
    Field(gt=0, le=MAX_PRICE, max_digits=12, decimal_places=2),
    BeforeValidator(_money_in),
    AfterValidator(lambda value: value.quantize(CENT)),  # held and written as "19.99", "1000.00"
    WithJsonSchema({"anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": int(MAX_PRICE), "multipleOf": 0.01},
        {"type": "string", "pattern": MONEY_PATTERN}]}),
]

# One line of text, not blank: product names go into emails and pages.
SINGLE_LINE = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
ProductName = Annotated[str, Field(min_length=1, max_length=200, pattern=SINGLE_LINE)]

# JSON Schema's "integer": 3 and 3.0, never "3", true or 3.5.
_INTEGRAL = {"type": "integer"}


def _integral(value: object) -> object:
    if isinstance(value, float | Decimal) and not isinstance(value, bool) and math.isfinite(value) \
            and value == int(value):
        return int(value)
    return value


MAX_QUANTITY = 10_000
Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY), BeforeValidator(_integral),
                     WithJsonSchema({**_INTEGRAL, "minimum": 1, "maximum": MAX_QUANTITY})]


# -- free-form order details --------------------------------------------------------------------
# What a shop sends beside the fields we compute with (product, size, notes, ...), carried unchanged
# through every event. Bounded so nothing absurd gets in; each bound is named in its error.
DETAIL_DEPTH = 4  # order_details.a.b.c.d at most
DETAIL_KEYS = 50  # per object
DETAIL_ITEMS = 100  # per list
DETAIL_STRING = 1000  # characters per string
# Strings may span lines (notes), so tab, LF and CR pass; every other control character is refused.
# Keys are any JSON string (the body's size bounds them): wherever one is shown, one_line() neutralises it.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
_TEXT = re.compile(TEXT_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _too(kind: str, message: str, path: str) -> PydanticCustomError:
    return PydanticCustomError(f"order_details_{kind}", "{path}: {message}", {"path": path, "message": message})


def free_form(value: Any, path: str, depth: int = 1) -> Any:
    """``value`` checked against the bounds above, its numbers as JSON numbers (a ``Decimal`` from an
    exact parse becomes a float: only the fields we compute with are read exactly)."""
    if isinstance(value, str):
        if len(value) > DETAIL_STRING:
            raise _too("string_too_long", f"strings are limited to {DETAIL_STRING} characters", path)
        if not _TEXT.fullmatch(value):
            raise _too("control_character", "control characters other than tab and line breaks are refused", path)
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise _too("number_out_of_range", "numbers must be finite", path)
        return number
    if depth >= DETAIL_DEPTH and isinstance(value, list | dict):
        raise _too("too_deep", f"details nest at most {DETAIL_DEPTH} levels", path)
    if isinstance(value, list):
        if len(value) > DETAIL_ITEMS:
            raise _too("too_many_items", f"lists are limited to {DETAIL_ITEMS} items", path)
        return [free_form(v, f"{path}.{i}", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if len(value) > DETAIL_KEYS:
            raise _too("too_many_keys", f"objects are limited to {DETAIL_KEYS} keys", path)
        return {k: free_form(v, f"{path}.{one_line(k)}", depth + 1) for k, v in value.items()}
    raise _too("type", f"{type(value).__name__} is not a JSON value", path)


def free_form_fields(fields: dict[str, Any], path: str, limit: int) -> dict[str, Any]:
    """The shop's own fields of an object that has at most ``limit`` fields in all, each value checked."""
    if limit < 0:
        raise _too("too_many_keys", f"objects are limited to {DETAIL_KEYS} keys of a shop's own", path)
    return {k: free_form(v, f"{path}.{one_line(k)}") for k, v in fields.items()}


def one_line(text: str) -> str:
    """``text`` with every control character (line breaks included) shown as U+FFFD: for a key or a
    name put on a line of its own (an email's body, a log message)."""
    return _CONTROL.sub("\ufffd", text)


def free_form_schema(depth: int = 1) -> dict[str, Any]:
    """The JSON Schema of a free-form value at ``depth`` (inlined level by level: depth is bounded)."""
    scalars: list[dict[str, Any]] = [
        {"type": "string", "maxLength": DETAIL_STRING, "pattern": TEXT_PATTERN},
        {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
    if depth >= DETAIL_DEPTH:
        return {"anyOf": scalars}
    inner = free_form_schema(depth + 1)
    return {"anyOf": [*scalars, {"type": "array", "maxItems": DETAIL_ITEMS, "items": inner},
                      {"type": "object", "maxProperties": DETAIL_KEYS, "additionalProperties": inner}]}


def shown(value: Any) -> str:
    """A free-form value as people read it: text as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
