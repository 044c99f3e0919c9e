"""JSON request bodies read exactly.

A number with a fraction becomes a ``Decimal`` (money is never read through a binary float: 19.99 is
19.99, and 19.990000000000000001 is not taken for 19.99); a key given twice, a non-JSON constant
(``NaN``, ``Infinity``) or a body that is not UTF-8 is refused rather than guessed at.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, NoReturn


class MalformedJson(ValueError):
    """Not a JSON text this API takes; the message says why."""


def _no_constant(name: str) -> NoReturn:
    raise MalformedJson(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise MalformedJson(f"the key {key!r} is given more than once")
        found[key] = value
    return found


def loads(body: bytes) -> Any:
    """The JSON value of ``body``; ``MalformedJson`` with the reason when it is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"the body is not UTF-8 (byte {exc.start})") from None
    text = text.removeprefix("\ufeff")  # RFC 8259: a parser may ignore a byte order mark
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except MalformedJson:
        raise
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise MalformedJson("the body nests too deeply") from None
    except ValueError as exc:  # an integer longer than Python converts
        raise MalformedJson(str(exc)) from None
