"""Slot claims, end to end, against both registry backends.

The `backend` fixture is parametrized: "postgres" talks to a fresh real database directly,
"api" talks to the real Staging API (waitress on a loopback port) on that same database. The
same tests run against both, through the library interface and through `invoke` processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from staging_ops.claims import service as claims
from staging_ops.errors import Conflict
from staging_ops.inventory import Inventory, load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.registry.api_client import ApiRegistry
from staging_ops.slots.model import HoldsAnotherSlot, SlotRegistry, UnknownSlot
from staging_ops.web import create_app
from staging_ops.web.auth import mint_token
from staging_ops.web.server import BackgroundServer

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")
SECRET = "test-secret-for-the-staging-api-0123456789"
WEEK = timedelta(days=7)
REGISTRY_VARS = ("STAGING_REGISTRY_DSN", "STAGING_API_URL", "STAGING_API_TOKEN")
# Quotes, statement separators, comments, unicode and SQL words: stored and shown verbatim.
NASTY_OWNER = 'O\'Brien "Bob"; DROP TABLE marts.staging_slots; -- ünïcødé 漢字'
NASTY_NOTE = "it's SELECT * FROM pg_user; --' OR 1=1; /* */ $$ %s %(x)s \\x00 ✓"


@dataclasses.dataclass
class Backend:
    name: str
    registry: SlotRegistry
    env: dict[str, str]  # what an operator's shell would export to use this backend
    dsn: str  # the database behind it, for checks made directly in SQL
    inventory: Inventory


def serve_api(dsn: str) -> BackgroundServer:
    """The Staging API on `dsn`, with room for 20+ concurrent clients."""
    app = create_app(PostgresRegistry(dsn, max_connections=25, cache_reads=True), jwt_secret=SECRET)
    return BackgroundServer(app, threads=24)


@pytest.fixture(params=["postgres", "api"])
def backend(
    request: pytest.FixtureRequest, registry_dsn: str, test_inventory_path: Path
) -> Iterator[Backend]:
    inventory = load_inventory(test_inventory_path)
    migrate(registry_dsn, inventory)
    base_env = {"STAGING_INVENTORY": str(test_inventory_path)}
    if request.param == "postgres":
        registry = PostgresRegistry(registry_dsn)
        yield Backend(
            "postgres",
            registry,
            {**base_env, "STAGING_REGISTRY_DSN": registry_dsn},
            registry_dsn,
            inventory,
        )
        registry.close()
        return
    with serve_api(registry_dsn) as server:
        token = mint_token(SECRET, "tester@example.com")
        client = ApiRegistry(server.url, token)
        env = {**base_env, "STAGING_API_URL": server.url, "STAGING_API_TOKEN": token}
        yield Backend("api", client, env, registry_dsn, inventory)
        client.close()


def invoke(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`invoke ARGS` as an operator runs it, with exactly `env`'s registry settings."""
    full = {k: v for k, v in os.environ.items() if k not in REGISTRY_VARS}
    return subprocess.run(
        [INVOKE, *args],
        cwd=ROOT,
        env={**full, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sql(dsn: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def event_count(dsn: str) -> int:
    return sql(dsn, "SELECT count(*) FROM marts.staging_slot_events")[0][0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the interface, on both backends ------------------------------------------------------


def test_claim_renews_for_the_holding_task(backend: Backend) -> None:
    first = backend.registry.claim(4, "ja-12", "alice", WEEK, "first")
    assert (first.slot.status, first.slot.task, first.slot.owner) == ("claimed", "JA-12", "alice")
    assert not first.renewed
    again = backend.registry.claim(4, "JA-12", "bob", timedelta(days=1))
    assert again.renewed
    assert again.slot.owner == "alice" and again.slot.claimed_at == first.slot.claimed_at
    assert again.slot.expires_at < first.slot.expires_at  # now + 1d instead of now + 7d
    assert again.slot.note == "first"  # no new note: the old one stays


def test_conflict_names_holder_task_and_since(backend: Backend) -> None:
    held = backend.registry.claim(4, "JA-1", "alice", WEEK).slot
    with pytest.raises(Conflict) as caught:
        backend.registry.claim(4, "JA-2", "bob", WEEK)
    message = str(caught.value)
    assert "JA-1" in message and "alice" in message
    assert held.claimed_at.strftime("%Y-%m-%d %H:%M UTC") in message
    assert backend.registry.get(4).task == "JA-1"


def test_task_holding_another_slot_gets_a_conflict_naming_it(backend: Backend) -> None:
    backend.registry.claim(2, "JA-7", "alice", WEEK)
    with pytest.raises(Conflict, match=r"JA-7 already holds slot 2"):
        backend.registry.claim(5, "JA-7", "alice", WEEK)
    assert backend.registry.get(5).status == "free"


def test_auto_picks_lowest_free_qa_slot_and_never_slot_10(backend: Backend) -> None:
    backend.registry.claim(1, "JA-100", "x", WEEK)
    picked = [backend.registry.claim(None, f"JA-{n}", "x", WEEK).slot.slot_id for n in range(1, 9)]
    assert picked == [2, 3, 4, 5, 6, 7, 8, 9]
    with pytest.raises(Conflict, match="no free QA slot"):
        backend.registry.claim(None, "JA-50", "x", WEEK)
    assert backend.registry.get(10).status == "free"
    # auto for a task that already holds a slot is idempotent: the same slot, renewed.
    again = backend.registry.claim(None, "JA-3", "x", WEEK)
    assert (again.slot.slot_id, again.renewed) == (4, True)


def test_release_only_by_holder_unless_forced(backend: Backend) -> None:
    backend.registry.claim(3, "JA-9", "alice", WEEK)
    with pytest.raises(Conflict, match=r"held by task JA-9 \(owner alice\).*--force"):
        backend.registry.release(3, "mallory")
    assert backend.registry.get(3).task == "JA-9"
    assert backend.registry.release(3, "alice").released  # the owner may
    backend.registry.claim(3, "JA-9", "alice", WEEK)
    assert backend.registry.release(3, "bob", task="ja-9").released  # whoever names the task
    backend.registry.claim(3, "JA-9", "alice", WEEK)
    forced = backend.registry.release(3, "mallory", force=True)
    assert forced.released and forced.before.task == "JA-9" and forced.after.status == "free"
    assert not backend.registry.release(3, "mallory").released  # already free: a no-op


def test_force_releases_any_owner_but_a_task_named_stays_a_condition(backend: Backend) -> None:
    """One meaning of force on both backends, through the CLI as through the interface: it
    overrides who may release, not the task named (the CLI's help and the OpenAPI text say
    so)."""
    backend.registry.claim(3, "JA-9", "alice", WEEK)
    events = event_count(backend.dsn)
    with pytest.raises(Conflict, match=r"now held by task JA-9 \(owner alice\).*, not by JA-8"):
        backend.registry.release(3, "mallory", task="JA-8", force=True)
    refused = invoke(backend.env, "release", "--slot", "3", "--task", "JA-8", "--force")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "not by JA-8" in refused.stderr and "without --task it releases" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert backend.registry.get(3).task == "JA-9" and event_count(backend.dsn) == events
    forced = invoke(backend.env, "release", "--slot", "3", "--force", "--owner", "mallory")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert backend.registry.get(3).status == "free"
    backend.registry.claim(3, "JA-9", "alice", WEEK)
    named = invoke(backend.env, "release", "--slot", "3", "--task", "JA-9", "--force")
    assert named.returncode == 0 and backend.registry.get(3).status == "free"
    help_text = invoke(backend.env, "--help", "release").stdout
    assert "only while that task holds it" in help_text
    if backend.name == "api":
        url = backend.env["STAGING_API_URL"] + "/api/staging/openapi.json"
        doc = requests.get(url, timeout=10).json()
        fields = doc["components"]["schemas"]["ReleaseRequest"]["properties"]
        assert "a task given must still be the holder's" in fields["force"]["description"]
        assert "even with force" in fields["task"]["description"]


def test_record_deploy_serving_notes_what_serves_and_leaves_the_claim(backend: Backend) -> None:
    """What a deploy whose claim was released meanwhile records (deploy/claim.py's fence)."""
    free = backend.registry.record_deploy(6, "feature/x", "abcdef1234", "alice", serving=True)
    assert (free.status, free.branch, free.commit) == ("free", "feature/x", "abcdef1234")
    assert free.deployed_at is not None
    held = backend.registry.claim(6, "JA-60", "bob", WEEK).slot
    after = backend.registry.record_deploy(6, "feature/y", "bcdef12345", "alice", serving=True)
    assert (after.task, after.owner, after.commit) == ("JA-60", "bob", "bcdef12345")
    # Another task's claim: its expiry, and the deploy time reap judges it by, are left.
    assert (after.expires_at, after.deployed_at) == (held.expires_at, held.deployed_at)


def test_record_deploy_renews_and_needs_a_claim(backend: Backend) -> None:
    with pytest.raises(Conflict, match="is free: claim it"):
        backend.registry.record_deploy(6, "feature/x", "abcdef1234", "alice")
    claimed = backend.registry.claim(6, "JA-4", "alice", timedelta(hours=2)).slot
    deployed = backend.registry.record_deploy(6, "feature/x", "ABCDEF1234", "alice", task="JA-4")
    assert (deployed.branch, deployed.commit) == ("feature/x", "abcdef1234")
    assert deployed.deployed_at is not None and deployed.expires_at >= claimed.expires_at
    with pytest.raises(Conflict, match="held by task JA-4"):
        backend.registry.record_deploy(6, "feature/y", "abcdef1234", "bob", task="JA-5")
    released = backend.registry.release(6, "alice")
    assert released.after.branch == "feature/x"  # what runs there is still recorded


def test_history_records_who_did_what(backend: Backend) -> None:
    backend.registry.claim(7, "JA-3", "alice", WEEK, "note")
    backend.registry.claim(7, "JA-3", "alice", WEEK)
    backend.registry.record_deploy(7, "feature/a", "abcdef1", "alice")
    backend.registry.release(7, "bob", force=True)
    events = backend.registry.history(7)
    assert [e.action for e in events[:4]] == ["release", "deploy", "renew", "claim"]
    assert [e.actor for e in events[:4]] == ["bob", "alice", "alice", "alice"]
    expected_via = "cli" if backend.name == "postgres" else "api:tester@example.com"
    assert {e.via for e in events[:4]} == {expected_via}
    assert events[0].before["task"] == "JA-3" and events[0].after["status"] == "free"
    assert events[-1].action == "register"
    assert all(e.slot_id == 7 for e in events)


def test_unknown_slot(backend: Backend) -> None:
    with pytest.raises(UnknownSlot):
        backend.registry.get(99)
    with pytest.raises(UnknownSlot):
        backend.registry.claim(99, "JA-1", "a", WEEK)


def test_wait_takes_the_slot_once_it_is_freed(backend: Backend) -> None:
    backend.registry.claim(4, "JA-1", "alice", WEEK)
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the holder releases while we wait
        waits.append(seconds)
        if len(waits) == 2:
            backend.registry.release(4, "alice")

    request = claims.ClaimRequest.parse(
        backend.inventory, slot="4", task="JA-2", owner="bob", ttl="1h", note=None, wait="10m"
    )
    notices: list[str] = []
    result = claims.claim(backend.registry, request, notify=notices.append, sleep=sleep)
    assert result.slot.task == "JA-2" and waits == [1.0, 2.0]
    assert "JA-1" in notices[0] and "waiting" in notices[0]


def test_wait_does_not_wait_for_a_task_that_holds_another_slot(backend: Backend) -> None:
    """Only a release by the task itself could change that: no waiting, at once exit 3."""
    backend.registry.claim(2, "JA-7", "alice", WEEK)
    backend.registry.claim(4, "JA-1", "bob", WEEK)
    request = claims.ClaimRequest.parse(
        backend.inventory, slot="4", task="JA-7", owner="alice", ttl="1h", note=None, wait="10m"
    )
    waits: list[float] = []
    with pytest.raises(HoldsAnotherSlot, match="already holds slot 2"):
        claims.claim(backend.registry, request, sleep=waits.append)
    assert waits == []


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def make_app_repo(tmp_path: Path) -> Path:
    """A bare repo: main, feature/merged (merged into main), feature/open (not merged),
    feature/fresh (main's previous commit, nothing of its own)."""
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q")
    (work / "app.txt").write_text("v1\n")
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "init")
    for branch in ("feature/merged", "feature/open"):
        _git(work, "checkout", "-qb", branch, "main")
        (work / f"{branch.split('/')[1]}.txt").write_text(branch)
        _git(work, "add", ".")
        _git(work, "commit", "-qm", branch)
    _git(work, "checkout", "-q", "main")
    _git(work, "merge", "-q", "--no-ff", "-m", "merge", "feature/merged")
    # Made from main with no work of its own yet: an ancestor of main, but not merged work.
    _git(work, "branch", "feature/fresh", "main~1")
    bare = tmp_path / "app.git"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def test_reap_frees_expired_merged_and_deleted(backend: Backend, tmp_path: Path) -> None:
    repo = make_app_repo(tmp_path)
    inventory = dataclasses.replace(
        backend.inventory, app=dataclasses.replace(backend.inventory.app, repo_url=str(repo))
    )
    branches = {
        1: "feature/merged",
        2: "feature/open",
        3: "feature/gone",
        5: "main",
        6: "feature/fresh",
    }
    for slot in (1, 2, 3, 4, 5, 6):
        backend.registry.claim(slot, f"JA-{slot}", "alice", WEEK)
        if slot in branches:
            backend.registry.record_deploy(slot, branches[slot], "abcdef1", "alice")
    sql(
        backend.dsn,
        "UPDATE marts.staging_slots SET expires_at = now() - interval '2 hours' WHERE slot_id = 4",
    )

    planned = claims.reap(backend.registry, inventory, check=True, by="reaper").items
    assert {i.slot.slot_id: i.reason for i in planned} == {
        1: "branch feature/merged is merged into main",
        3: "branch feature/gone was deleted",
        4: "expired 2h ago",
    }
    assert all(s.claimed for s in backend.registry.status() if s.slot_id <= 6)

    done = claims.reap(backend.registry, inventory, by="reaper").items
    assert [(i.slot.slot_id, i.outcome) for i in done] == [
        (1, "released"),
        (3, "released"),
        (4, "released"),
    ]
    claimed = {s.slot_id for s in backend.registry.status() if s.claimed}
    assert claimed == {2, 5, 6}
    reaped = [e for e in backend.registry.history(limit=100) if e.action == "reap"]
    assert {(e.slot_id, e.actor) for e in reaped} == {(1, "reaper"), (3, "reaper"), (4, "reaper")}
    assert any(e.detail == "branch feature/gone was deleted" for e in reaped)


def _repo_inventory(backend: Backend, repo: Path | str) -> Inventory:
    return dataclasses.replace(
        backend.inventory, app=dataclasses.replace(backend.inventory.app, repo_url=str(repo))
    )


def test_reap_judges_a_claim_by_its_own_deploy_not_the_last_holders(
    backend: Backend, tmp_path: Path
) -> None:
    """The row keeps the last deploy's branch across a release: a new claim that has not
    deployed yet must not be reaped because its predecessor's branch was merged."""
    inventory = _repo_inventory(backend, make_app_repo(tmp_path))
    backend.registry.claim(3, "JA-1", "alice", WEEK)
    backend.registry.record_deploy(3, "feature/merged", "abcdef1", "alice")
    backend.registry.release(3, "alice")
    backend.registry.claim(3, "JA-2", "bob", WEEK)
    assert backend.registry.get(3).branch == "feature/merged"
    assert claims.reap(backend.registry, inventory, by="reaper").items == []
    assert backend.registry.get(3).task == "JA-2"


class _DeploysBeforeRelease:
    """The registry, with a new deploy of each slot landing just before reap releases it
    (as if a deploy finished while reap was asking git)."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)

    def release(self, slot_id: int, by: str, **kwargs: Any) -> Any:
        self._registry.record_deploy(slot_id, "feature/new-work", "abcdef2", "alice")
        return self._registry.release(slot_id, by, **kwargs)


def test_reap_skips_a_claim_deployed_again_after_it_was_judged(
    backend: Backend, tmp_path: Path
) -> None:
    inventory = _repo_inventory(backend, make_app_repo(tmp_path))
    backend.registry.claim(4, "JA-4", "alice", WEEK)
    backend.registry.record_deploy(4, "feature/merged", "abcdef1", "alice")
    done = claims.reap(_DeploysBeforeRelease(backend.registry), inventory, by="reaper").items
    assert [(i.slot.slot_id, i.outcome.split(":")[0]) for i in done] == [(4, "skipped")]
    assert "deployed again" in done[0].outcome
    state = backend.registry.get(4)
    assert (state.task, state.branch) == ("JA-4", "feature/new-work")


def test_reap_frees_expired_claims_even_when_git_cannot_be_asked(
    backend: Backend, tmp_path: Path
) -> None:
    inventory = _repo_inventory(backend, tmp_path / "no-such-repo.git")
    for slot in (1, 2):
        backend.registry.claim(slot, f"JA-{slot}", "alice", WEEK)
        backend.registry.record_deploy(slot, "feature/open", "abcdef1", "alice")
    sql(
        backend.dsn,
        "UPDATE marts.staging_slots SET expires_at = now() - interval '1 hour' WHERE slot_id = 1",
    )
    report = claims.reap(backend.registry, inventory, by="reaper")
    assert [(i.slot.slot_id, i.outcome) for i in report.items] == [(1, "released")]
    assert report.problem and report.problem.startswith("branches not checked: git ls-remote")
    assert backend.registry.get(2).claimed
    # The same through the task: what could be reaped is shown, and it exits 1.
    text = Path(backend.inventory.path).read_text()
    assert backend.inventory.app.repo_url in text
    path = tmp_path / "inventory.toml"
    path.write_text(text.replace(backend.inventory.app.repo_url, inventory.app.repo_url))
    result = invoke({**backend.env, "STAGING_INVENTORY": str(path)}, "reap")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: branches not checked: git ls-remote" in result.stderr


def test_reap_skips_a_claim_renewed_meanwhile(backend: Backend) -> None:
    backend.registry.claim(4, "JA-4", "alice", WEEK)
    # reap judged the claim expired, but it was renewed before reap released it:
    with pytest.raises(Conflict, match="not expired"):
        backend.registry.release(
            4, "reaper", task="JA-4", force=True, expired_only=True, action="reap", reason="expired"
        )
    assert backend.registry.get(4).task == "JA-4"


# ---- the tasks, as operators run them, on both backends --------------------------------------


def test_cli_roundtrip_keeps_odd_strings_verbatim(backend: Backend) -> None:
    done = invoke(
        backend.env,
        "claim",
        "--slot",
        "3",
        "--task",
        "ja-77",
        "--owner",
        NASTY_OWNER,
        "--note",
        NASTY_NOTE,
        "--ttl",
        "12h",
    )
    assert done.returncode == 0, done.stderr
    assert "claimed slot 3" in done.stdout and NASTY_OWNER in done.stdout
    rows = json.loads(invoke(backend.env, "status", "--json", "--no-health").stdout)
    assert len(rows) == 10
    row = next(r for r in rows if r["slot"] == 3)
    assert {k: row[k] for k in ("identifier", "status", "task", "owner", "note")} == {
        "identifier": "staging-3",
        "status": "claimed",
        "task": "JA-77",
        "owner": NASTY_OWNER,
        "note": NASTY_NOTE,
    }
    assert {
        "slot",
        "identifier",
        "status",
        "task",
        "owner",
        "branch",
        "commit",
        "expires_at",
    } <= set(row)
    table = invoke(backend.env, "status", "--no-health").stdout
    assert NASTY_OWNER in table and "JA-77" in table
    assert sql(backend.dsn, "SELECT owner, note FROM marts.staging_slots WHERE slot_id = 3") == [
        (NASTY_OWNER, NASTY_NOTE)
    ]

    refused = invoke(backend.env, "release", "--slot", "3", "--owner", "someone-else")
    assert refused.returncode == 3 and "JA-77" in refused.stderr and "--force" in refused.stderr
    released = invoke(backend.env, "release", "--slot", "3", "--owner", NASTY_OWNER)
    assert released.returncode == 0, released.stderr
    events = json.loads(invoke(backend.env, "history", "--slot", "3", "--json").stdout)
    assert [e["action"] for e in events[:2]] == ["release", "claim"]
    assert events[1]["actor"] == NASTY_OWNER and events[1]["after"]["note"] == NASTY_NOTE
    assert "claim" in invoke(backend.env, "history", "--slot", "3").stdout


BAD_INPUTS = [
    ("claim", "--slot", "4", "--task", "JA12"),
    ("claim", "--slot", "4", "--task", "12-JA"),
    ("claim", "--slot", "4", "--task", "JA-12; DROP TABLE x"),
    ("claim", "--slot", "11", "--task", "JA-12"),
    ("claim", "--slot", "four", "--task", "JA-12"),
    ("claim", "--slot", "4", "--task", "JA-12", "--ttl", "7 days"),
    ("claim", "--slot", "4", "--task", "JA-12", "--ttl", "0d"),
    ("claim", "--slot", "4", "--task", "JA-12", "--owner", "line\nbreak"),
    ("release", "--slot", "0"),
    ("claim", "--slot", "auto", "--task", "JA-12", "--wait", "soon"),
    ("history", "--slot", "12"),
]


def test_cli_bad_input_exits_2_and_writes_nothing(backend: Backend) -> None:
    before = event_count(backend.dsn)
    for args in BAD_INPUTS:
        done = invoke(backend.env, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, args
    assert event_count(backend.dsn) == before


def test_cli_wait_gives_up_with_a_conflict(backend: Backend) -> None:
    backend.registry.claim(4, "JA-1", "alice", WEEK)
    done = invoke(backend.env, "claim", "--slot", "4", "--task", "JA-2", "--wait", "1s")
    assert done.returncode == 3 and "JA-1" in done.stderr and "waiting" in done.stderr


def test_cli_reap_check_changes_nothing(backend: Backend) -> None:
    backend.registry.claim(4, "JA-4", "alice", WEEK)
    sql(
        backend.dsn,
        "UPDATE marts.staging_slots SET expires_at = now() - interval '1 day' WHERE slot_id = 4",
    )
    done = invoke(backend.env, "reap", "--check", "--json")
    assert done.returncode == 0, done.stderr
    assert [(i["slot"], i["outcome"]) for i in json.loads(done.stdout)] == [(4, "would release")]
    assert backend.registry.get(4).claimed


# ---- configuration and reachability ---------------------------------------------------------


def test_cli_unreachable_database_exits_1_naming_host_port(test_inventory_path: Path) -> None:
    port = closed_port()
    env = {
        "STAGING_INVENTORY": str(test_inventory_path),
        "STAGING_REGISTRY_DSN": f"postgresql://ops:s3cret-pw@127.0.0.1:{port}/registry",
    }
    for args in (("status",), ("claim", "--slot", "4", "--task", "JA-1")):
        done = invoke(env, *args)
        assert done.returncode == 1
        assert f"127.0.0.1:{port}" in done.stderr
        assert "s3cret-pw" not in done.stderr + done.stdout and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_cli_unreachable_api_exits_1_naming_host_port(test_inventory_path: Path) -> None:
    port = closed_port()
    env = {
        "STAGING_INVENTORY": str(test_inventory_path),
        "STAGING_API_URL": f"http://127.0.0.1:{port}",
        "STAGING_API_TOKEN": "t",
    }
    done = invoke(env, "claim", "--slot", "4", "--task", "JA-1")
    assert done.returncode == 1 and f"127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"STAGING_API_URL": "http://127.0.0.1:1"},
        {"STAGING_REGISTRY_DSN": "postgresql://a@127.0.0.1/x", "STAGING_API_URL": "http://h"},
        {"STAGING_REGISTRY_DSN": "host=x password=s3cret-pw port"},
    ],
)
def test_cli_registry_configuration_errors_exit_2(
    env: dict[str, str], test_inventory_path: Path
) -> None:
    done = invoke({"STAGING_INVENTORY": str(test_inventory_path), **env}, "status")
    assert done.returncode == 2, done.stderr
    assert "STAGING_" in done.stderr and "s3cret-pw" not in done.stderr


def test_ttl_sets_the_expiry(backend: Backend) -> None:
    state = backend.registry.claim(8, "JA-8", "alice", timedelta(minutes=90)).slot
    assert state.expires_at - state.claimed_at == timedelta(minutes=90)
    assert state.ttl_seconds == 5400 and not state.expired(datetime.now(UTC))
    assert state.expired(datetime.now(UTC) + timedelta(hours=2))
