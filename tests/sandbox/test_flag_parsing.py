"""Every number, slot, duration and list a task takes, fed arbitrary text (Hypothesis): the
task ends with exit 0, 1, 2 or 3, never a traceback, and when it says bad input (2) the
registry is exactly as before. The tasks run in-process through invoke's own Program (the
`invoke` CLI's parser and executor, without a process per example) on the real sandbox and
a real registry; a few of the reported cases also run through the real `invoke` command.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoke import Program

import tasks
from staging_ops.inventory import load_inventory
from staging_ops.registry import migrate
from tests.conftest import run_invoke

EXITS = {0, 1, 2, 3}
# The spellings of "3" (and of other numbers) that int() or isdigit() read as numbers, bounds,
# lists and durations; Hypothesis adds arbitrary text around them.
NUMBERS = [
    "٣",
    "²",
    "１",
    " 3",
    "3 ",
    "+3",
    "-3",
    "3_0",
    "03",
    "3.0",
    "1e3",
    "99999999999999999999",
]
TRICKY = [
    *NUMBERS,
    *["0x3", "3\t"],
    *["0", "1", "3", "10", "11", "", "auto", "AUTO"],
    *["3,4", "3,,4", "3,", " 3,4", "7d", "30m", "0s", "999999999w", "366d", "1.5h", "٧d"],
]
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=24,
)
VALUES = st.one_of(st.sampled_from(TRICKY), TEXT, st.integers(-(10**20), 10**20).map(str))

# (task and fixed flags, the flag fed arbitrary values). The fixed flags keep each run from
# reaching anything slow or lasting: a deploy whose branch is invalid, logs of no service,
# a server and a sandbox refused for another flag, so only the fuzzed flag varies.
CASES = [
    (["claim", "--task=JA-1"], "--slot"),
    (["claim", "--slot=auto", "--task=JA-2"], "--ttl"),
    (["claim", "--slot=2", "--task=JA-3"], "--wait"),
    (["claim", "--slot=auto"], "--task"),
    (["release", "--task=JA-9"], "--slot"),
    (["history"], "--slot"),
    (["history"], "--limit"),
    (["deploy", "--branch=..bad"], "--slot"),
    (["rollback", "--to=../x"], "--slot"),
    (["logs", "--slot=1", "--service=nope"], "-n"),
    (["logs", "--service=nope"], "--slot"),
    (["render", "--out=OUT"], "--slot"),
    (["api.token"], "--ttl"),
    (["api.serve", "--workers=999"], "--port"),
    (["sandbox.up", "--hosts=0", "--dir=OUT"], "--port-base"),
    (["sandbox.up", "--hosts=0", "--dir=OUT"], "--slots"),
]


def registry_snapshot(dsn: str) -> tuple[list[tuple], int]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT * FROM marts.staging_slots ORDER BY slot_id")
            rows = cur.fetchall()
            cur.execute("SELECT count(*) FROM marts.staging_slot_events")
            return rows, cur.fetchone()[0]
    finally:
        conn.close()


def run_task(argv: list[str]) -> tuple[int, str]:
    """`invoke ARGV` in this process: its exit code and stderr. An exception escaping invoke
    (what a user would see as a traceback) fails the test with that exception."""
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            Program(namespace=tasks.ns, name="invoke", binary="invoke").run(["invoke", *argv])
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    return code, err.getvalue()


@pytest.fixture
def operator_env(sandbox, registry_dsn: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    migrate(registry_dsn, load_inventory(sandbox.inventory_path))
    env = {
        **sandbox.env(),
        "STAGING_REGISTRY_DSN": registry_dsn,
        "STAGING_API_JWT_SECRET": "flag-parsing-test-secret-0123456789abcdef",
    }
    env.pop("STAGING_API_URL", None)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize(("fixed", "flag"), CASES, ids=[f"{c[0][0]} {c[1]}" for c in CASES])
def test_any_flag_value_ends_in_a_known_exit_and_bad_input_changes_nothing(
    operator_env, registry_dsn: str, tmp_path: Path, fixed: list[str], flag: str
) -> None:
    fixed = [part.replace("OUT", str(tmp_path / "out")) for part in fixed]

    def check(value: str) -> None:
        before = registry_snapshot(registry_dsn)
        code, stderr = run_task([*fixed, f"{flag}={value}"])
        assert code in EXITS, (value, code, stderr)
        assert "Traceback" not in stderr, stderr
        if code == 2:
            assert len(stderr.strip().splitlines()) == 1, stderr
            assert registry_snapshot(registry_dsn) == before, value

    for value in NUMBERS:  # every reported spelling, every time; then Hypothesis's own
        check(value)
    settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))(
        given(VALUES)(check)
    )()


@pytest.mark.parametrize(
    "argv",
    [
        ["history", "--limit=abc"],
        ["history", "--limit=٣"],
        ["history", "--limit=0"],
        ["logs", "--slot=1", "-n", "²"],
        ["claim", "--slot=٣", "--task=JA-1"],
        ["claim", "--slot=3", "--task=JA-1", "--ttl=99999999999999999999d"],
        ["claim", "--slot=3", "--task=JA-1", "--wait=999999w"],
        ["provision-all", "--check", "--slots=3,,4"],
        ["release", "--slot= 3"],
    ],
)
def test_the_reported_values_are_one_line_exit_2_through_the_real_cli(
    operator_env: dict[str, str], registry_dsn: str, argv: list[str]
) -> None:
    before = registry_snapshot(registry_dsn)
    done = run_invoke(*argv, env=operator_env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert registry_snapshot(registry_dsn) == before
