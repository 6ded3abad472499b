"""The one parsing layer: every number, slot, duration, list and JSON body that an operator's
flag or an API client's request carries is read here, and nowhere else.

Strict on purpose. `int()` and `str.isdigit()` take any Unicode digit (Arabic-Indic,
fullwidth, superscript: the last passes isdigit() and then fails int()), blanks around it,
a sign and underscores, so "3" could arrive spelled many ways, some read as another number
and some ending in a traceback. Here a number is canonical ASCII decimal (`0` or
`[1-9][0-9]*`) or a JSON integer, always within bounds, and anything else is BadInput: one
line, exit 2, nothing touched.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from staging_ops.errors import BadInput

# Canonical decimals only: no sign, blank, underscore or leading zero; 15 digits at most, so
# no text makes int() slow or a timedelta overflow.
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,14}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(0|[1-9][0-9]{0,14})([smhdwSMHDW]?)")
MAX_HISTORY = 1000  # events one `history` (CLI or API) returns at most
MAX_LOG_LINES = 100_000  # lines one `logs -n` asks journalctl for
MAX_JSON_BODY = 64 * 1024  # bytes of an API request body (a claim is a few hundred)
MAX_SLOT_ID = 9999  # the inventory's bound on a slot id (inventory/checks.py)
MAX_SHOWN = 40  # characters of a refused value quoted back
# Deeper JSON than this is refused before it is decoded: json.loads recurses per level, and
# a body of 100 000 '[' would otherwise end in RecursionError (a 500), not a 400.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def shown(value: object) -> str:
    """A refused value as an error message quotes it: on one line, and not too long."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def integer(value: object, what: str, *, low: int, high: int) -> int:
    """A whole number from `low` to `high`: canonical ASCII decimal text, or a JSON number
    that is whole (never a bool)."""
    number: int | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value) if abs(value) < 1e15 else None
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    if number is None:
        raise BadInput(f"invalid {what} {shown(value)}: expected a whole number ({low}-{high})")
    if not low <= number <= high:
        raise BadInput(f"invalid {what} {shown(value)}: must be between {low} and {high}")
    return number


def slot_number(value: object, valid: Collection[int], valid_text: str) -> int:
    """A slot the inventory knows (`valid`), or BadInput naming the valid ones."""
    try:
        number = integer(value, "slot", low=1, high=max(valid, default=1))
    except BadInput:
        number = None
    if number is None or number not in valid:
        raise BadInput(f"invalid slot {shown(value)}: valid slots are {valid_text}")
    return number


def slot_numbers(spec: object, valid: Collection[int], valid_text: str) -> list[int]:
    """`3,4` → [3, 4] (in that order, a slot named twice once); no blanks, no empty items."""
    if not isinstance(spec, str) or not spec or len(spec) > 10 * max(len(valid), 1):
        raise BadInput(f"invalid slots {shown(spec)}: expected slot numbers like 3,4")
    numbers = [slot_number(part, valid, valid_text) for part in spec.split(",")]
    return list(dict.fromkeys(numbers))


def duration(
    value: object, what: str, *, low: timedelta = timedelta(seconds=1), high: timedelta
) -> timedelta:
    """`30m`, `12h`, `7d`, `2w`, `45s` or a number of seconds (text or JSON integer), from
    `low` to `high`. Units are case-insensitive; nothing else is allowed around them."""
    seconds: int | None = None
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = integer(value, what, low=0, high=10**15)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        seconds = int(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds is None:
        raise BadInput(
            f"invalid {what} {shown(value)}: expected a number and a unit, like 30m, 12h or 7d"
        )
    if not low.total_seconds() <= seconds <= high.total_seconds():
        raise BadInput(
            f"invalid {what} {shown(value)}: must be between {_short(low)} and {_short(high)}"
        )
    return timedelta(seconds=seconds)


def _short(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0 and unit != "w":
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def duration_pattern(low: timedelta, high: timedelta) -> str:
    """The regular expression (JSON Schema / ECMA) of exactly the texts duration() accepts
    between `low` and `high`: the OpenAPI document states the server's rule, not a looser one."""
    lo, hi = int(low.total_seconds()), int(high.total_seconds())
    alternatives = []
    for unit, size in _UNITS.items():
        first, last = -(-lo // size), hi // size
        if first > last:
            continue
        digits = "|".join(decimal_pieces(first, last))
        suffix = f"[{unit}{unit.upper()}]" + ("?" if unit == "s" else "")
        alternatives.append(f"(?:{digits}){suffix}")
    return "^(?:" + "|".join(alternatives) + ")$"


def decimal_pieces(low: int, high: int) -> list[str]:
    """Regex alternatives matching exactly the canonical decimals from `low` to `high`."""
    pieces: list[str] = []
    if low == 0 <= high:
        pieces.append("0")
        low = 1
    while low <= high:
        size = 0  # the widest block [low, low + 10**size) that is aligned and fits
        while low % 10 ** (size + 1) == 0 and low + 10 ** (size + 1) - 1 <= high:
            size += 1
        step = 10**size
        digit = (low // step) % 10
        count = 1
        while digit + count <= 9 and low + (count + 1) * step - 1 <= high:
            count += 1
        prefix = str(low // (step * 10)) if low >= step * 10 else ""
        first = str(digit) if count == 1 else f"[{digit}-{digit + count - 1}]"
        pieces.append(prefix + first + ("[0-9]" * size))
        low += count * step
    return pieces


def json_body(body: bytes, what: str = "the request body") -> Any:
    """A JSON document, or BadInput: not UTF-8, not JSON, NaN/Infinity, or nested deeper
    than MAX_JSON_DEPTH (refused before decoding, so no depth ends in RecursionError)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise BadInput(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadInput(f"{what} is not valid JSON") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
