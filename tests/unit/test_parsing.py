"""The parsing layer (staging_ops/parsing.py): tables of what is accepted and refused, and
properties over arbitrary text: nothing but BadInput ever comes out, and what is accepted is
exactly the canonical ASCII spelling within bounds."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from staging_ops import parsing
from staging_ops.errors import BadInput
from staging_ops.slots.model import MAX_TTL, MIN_TTL, parse_task, parse_ttl

VALID = {1, 2, 3, 4, 10}
# Unicode digits, blanks, signs, underscores, exponents, floats and overflows.
REFUSED_NUMBERS = ["٣", "²", "１", " 3", "3 ", "+3", "-3", "3_0", "03", "3.0", "3e0", "", "3\n"]


@pytest.mark.parametrize("text", REFUSED_NUMBERS)
def test_a_number_is_canonical_ascii(text):
    with pytest.raises(BadInput):
        parsing.integer(text, "n", low=0, high=100)


@pytest.mark.parametrize(
    ("value", "expected"), [("0", 0), ("3", 3), ("100", 100), (7, 7), (7.0, 7)]
)
def test_numbers_accepted(value, expected):
    assert parsing.integer(value, "n", low=0, high=100) == expected


@pytest.mark.parametrize("value", [True, None, [], 3.5, float("nan"), 1e300, "101", 101, -1])
def test_non_numbers_and_out_of_bounds_are_refused(value):
    with pytest.raises(BadInput):
        parsing.integer(value, "n", low=0, high=100)


def test_a_refused_value_is_quoted_on_one_short_line():
    with pytest.raises(BadInput) as refused:
        parsing.integer("9\n" * 1000, "limit", low=1, high=5)
    message = str(refused.value)
    assert "\n" not in message and len(message) < 120, message


@pytest.mark.parametrize("text", ["3", "10"])
def test_known_slots(text):
    assert parsing.slot_number(text, VALID, "1-4, 10") == int(text)


@pytest.mark.parametrize("text", ["5", "0", "11", "٣", " 3", "auto", "3,4"])
def test_unknown_slots_name_the_valid_ones(text):
    with pytest.raises(BadInput, match=r"valid slots are 1-4, 10"):
        parsing.slot_number(text, VALID, "1-4, 10")


@pytest.mark.parametrize(
    ("spec", "expected"), [("3", [3]), ("3,4", [3, 4]), ("4,3,4", [4, 3]), ("10,1", [10, 1])]
)
def test_slot_lists(spec, expected):
    assert parsing.slot_numbers(spec, VALID, "") == expected


@pytest.mark.parametrize("spec", ["3,", ",3", "3,,4", "3, 4", "3;4", "3,٤", "", "3,5"])
def test_slot_lists_are_strict(spec):
    with pytest.raises(BadInput):
        parsing.slot_numbers(spec, VALID, "")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30m", 1800),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        ("7D", 604800),
        ("3600", 3600),
        (3600, 3600),
        ("90s", 90),
    ],
)
def test_durations(value, seconds):
    assert parsing.duration(value, "ttl", high=MAX_TTL) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "value",
    [
        " 7d",
        "7d ",
        "7 d",
        "+7d",
        "٧d",
        "7dd",
        "d",
        "7x",
        "1.5h",
        "07d",
        "0",
        0,
        -5,
        True,
        "99999999999999999999",
        10**30,
        1e300,
        "366d",
        "9999999999w",
    ],
)
def test_bad_or_out_of_range_durations(value):
    with pytest.raises(BadInput):
        parsing.duration(value, "ttl", high=MAX_TTL)


def test_ttl_bounds():
    assert parse_ttl(None) == timedelta(days=7)
    assert parse_ttl("1m") == MIN_TTL and parse_ttl("365d") == MAX_TTL
    for value in ("59s", "366d", 31536001):
        with pytest.raises(BadInput):
            parse_ttl(value)


@pytest.mark.parametrize("text", ["ja-1", "JA-123", "Ab1-7"])
def test_task_keys(text):
    assert parse_task(text) == text.upper()


@pytest.mark.parametrize("text", [" JA-1", "JA-1\n", "ıa-1", "JA-١", "JA-", 7, None, "ßA-1"])
def test_task_keys_are_strict(text):
    with pytest.raises(BadInput):
        parse_task(text)


@given(st.text(max_size=30))
def test_integer_accepts_exactly_the_canonical_spelling(text):
    try:
        number = parsing.integer(text, "n", low=0, high=10**6)
    except BadInput:
        assert not re.fullmatch(r"0|[1-9][0-9]*", text, re.ASCII) or int(text) > 10**6
    else:
        assert str(number) == text


@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.none(), st.booleans()))
def test_duration_raises_only_bad_input(value):
    try:
        ttl = parsing.duration(value, "ttl", low=MIN_TTL, high=MAX_TTL)
    except BadInput:
        return
    assert MIN_TTL <= ttl <= MAX_TTL


@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=0, max_value=3000))
def test_decimal_pieces_match_exactly_the_range(low, high):
    pattern = re.compile("|".join(parsing.decimal_pieces(low, high)))
    for n in {low - 1, low, low + 1, high - 1, high, high + 1, (low + high) // 2, 0, 10, 99}:
        if n >= 0:
            assert bool(pattern.fullmatch(str(n))) == (low <= n <= high), (low, high, n)


@given(st.one_of(st.text(max_size=12), st.integers(min_value=0, max_value=10**9).map(str)))
def test_the_documented_ttl_pattern_is_the_servers_rule(text):
    # ECMA's `$` (JSON Schema's) is Python's `\Z`: Python's `$` also matches before a "\n".
    pattern = re.compile(parsing.duration_pattern(MIN_TTL, MAX_TTL).replace("$", r"\Z"))
    try:
        parse_ttl(text)
        accepted = True
    except BadInput:
        accepted = False
    assert bool(pattern.search(text)) == (accepted and text != ""), text


@pytest.mark.parametrize("text", ["1m", "60", "60s", "365d", "52w", "8760h", "525600M"])
def test_the_ttl_pattern_accepts_the_bounds(text):
    assert re.search(parsing.duration_pattern(MIN_TTL, MAX_TTL), text)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"{",
        b"\xff",
        b"NaN",
        b'{"t": Infinity}',
        b"1" * 5000,
    ],
)
def test_json_bodies_that_would_break_a_parser_are_bad_input(body):
    with pytest.raises(BadInput):
        parsing.json_body(body)


def test_json_depth_counts_brackets_outside_strings_only():
    inside = json.dumps({"note": "[" * 1000})
    assert parsing.json_body(inside.encode()) == {"note": "[" * 1000}
    nested = "[" * parsing.MAX_JSON_DEPTH + "]" * parsing.MAX_JSON_DEPTH
    assert parsing.json_body(nested.encode()) is not None
