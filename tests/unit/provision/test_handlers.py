"""The nginx decision after the services script, as one table (fixtures/nginx_decision.json),
and the SFTP work that puts nginx files back."""

from __future__ import annotations

import json

import pytest

from staging_ops.provision import handlers
from staging_ops.provision.handlers import Handlers, Restore
from staging_ops.remote.facts import PathState
from staging_ops.remote.files import Link, Write
from tests.unit.provision.plan_fixtures import FIXTURES

TABLE = json.loads((FIXTURES / "nginx_decision.json").read_text())


def _handlers(data: dict) -> Handlers:
    return Handlers(
        nginx=data.get("nginx", False),
        daemon_reload=data.get("daemon_reload", False),
        restart=tuple(data.get("restart", [])),
        reload=tuple(data.get("reload", [])),
    )


@pytest.mark.parametrize("row", TABLE["rows"], ids=[row["case"] for row in TABLE["rows"]])
def test_nginx_decision(row):
    ours = _handlers(row.get("handlers", TABLE["handlers"]))
    outcome = handlers.after_services(
        row["code"], ours, _handlers(row["earlier"]), restorable=row["restorable"]
    )
    marker = outcome.marker.as_json() if isinstance(outcome.marker, Handlers) else outcome.marker
    assert {"verdict": outcome.verdict, "restore": outcome.restore, "marker": marker} == row[
        "expect"
    ]


def test_the_table_has_every_exit_code_and_marker_state():
    rows = TABLE["rows"]
    assert {r["code"] for r in rows} >= {
        0,
        1,
        handlers.NGINX_FAILED,
        handlers.NGINX_AND_SYSTEMD_FAILED,
    }
    for code in (handlers.NGINX_FAILED, handlers.NGINX_AND_SYSTEMD_FAILED):
        for restorable in (True, False):
            assert any(r["code"] == code and r["restorable"] is restorable for r in rows)
    states = {("nginx" in r["earlier"]) for r in rows if r["code"] == handlers.NGINX_FAILED}
    assert states == {True, False}


def test_put_back_writes_the_marker_first_and_every_old_state():
    marker = "/srv/staging/.staging-ops-pending.json"
    restores = [
        Restore("/n/a.conf", PathState("file", mode=0o640, uid=0, gid=4), "old text\r\n"),
        Restore("/n/e/a.conf", PathState("link", target="/n/a.conf"), None),
        Restore("/n/new.conf", PathState("missing"), None),
        # A file whose content could not be read is left as it is, never truncated.
        Restore("/n/unreadable.conf", PathState("file", mode=0o644, uid=0, gid=0), None),
    ]
    ops = handlers.put_back(restores, marker, Handlers(nginx=True))
    assert ops.writes == [
        Write(marker, '{"nginx": true, "daemon_reload": false, "restart": []}', 0o600),
        Write("/n/a.conf", "old text\r\n", 0o640, 0, 4),
    ]
    assert ops.links == [Link("/n/e/a.conf", "/n/a.conf")]
    assert ops.removes == ["/n/new.conf"]
    assert handlers.put_back(restores, marker, handlers.REMOVE).removes == [marker, "/n/new.conf"]
    kept = handlers.put_back([], marker, handlers.KEEP)
    assert (kept.writes, kept.links, kept.removes) == ([], [], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, Handlers()),
        ("", Handlers()),
        ('{"nginx": true, "restart": ["u1"]}', Handlers(nginx=True, restart=("u1",))),
        ("[1, 2]", Handlers()),
        ('{"nginx": tr', Handlers(nginx=True, daemon_reload=True)),
    ],
)
def test_marker_text_to_pending_handlers(text, expected):
    assert Handlers.from_marker(text) == expected
