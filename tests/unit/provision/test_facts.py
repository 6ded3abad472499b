"""The probe's JSON as typed facts, and the request that asks for them."""

from __future__ import annotations

import json
import subprocess
import sys

from staging_ops.remote import facts as remote_facts
from staging_ops.remote.facts import FactsRequest, HostFacts, PathState, UserIds


def test_the_probes_answer_becomes_typed_facts():
    facts = HostFacts.from_json(
        {
            "stat": {
                "/a": {"type": "file", "mode": 420, "uid": 0, "gid": 0, "sha256": "x", "size": 3},
                "/l": {"type": "link", "target": "/a", "mode": 511, "uid": 0, "gid": 0},
                "/m": {"type": "missing"},
            },
            "content": {"/a": "abc", "/gone": None},
            "packages": {"nginx": True, "git": False, "postgresql": False},
            "user": {"uid": 998, "gid": 997},
            "units": {"ui@s1.service": "active"},
            "services": {"nginx": {"enabled": "enabled", "active": "active"}},
            "certificates": {"/c.pem": {"exists": True, "names": ["a.example"], "not_after": 0}},
            "euid": 0,
        }
    )
    assert facts.state("/a") == PathState("file", 0o644, 0, 0, sha256="x", size=3)
    assert facts.state("/l").target == "/a" and facts.state("/m").missing
    assert (facts.text("/a"), facts.text("/gone"), facts.text("/never-asked")) == (
        "abc",
        None,
        None,
    )
    assert facts.missing_packages == ["git", "postgresql"]
    assert facts.owner_ids("root") == (0, 0) and facts.owner_ids("staging") == (998, 997)
    assert (
        facts.service("nginx").running_at_boot and not facts.service("postgresql").running_at_boot
    )
    assert facts.certificate("/c.pem").names == frozenset({"a.example"})
    assert not facts.certificate("/other.pem").exists
    bare = HostFacts.from_json({})
    assert bare.user is None and bare.owner_ids("staging") == (-1, -1)
    assert bare.with_user(UserIds(5, 6)).owner_ids("staging") == (5, 6)


def test_the_request_runs_through_the_real_probe(tmp_path):
    """The probe's own code on this machine, with a typed request: every field it answers
    parses (the plan never reads the raw JSON)."""
    (tmp_path / "f").write_text("hi\r\n")
    (tmp_path / "l").symlink_to(tmp_path / "f")
    request = FactsRequest(
        stat=(str(tmp_path / "f"), str(tmp_path / "l"), str(tmp_path / "none")),
        read=(str(tmp_path / "f"),),
        user="root",
        units_if_deployed=(
            (str(tmp_path / "none"), ("x.service",), "w@s:", ("web",)),
            (str(tmp_path / "current"), ("web.service",), "w@s:", ("web",)),
        ),
    )
    # A deployed slot whose live release declares a worker of its own: its unit is asked too.
    (tmp_path / "r1").mkdir()
    spec = {"processes": {"web": "a", "release": "m", "dag-processor": "b"}, "healthchecks": {}}
    (tmp_path / "r1" / ".process-spec.json").write_text(json.dumps(spec))
    (tmp_path / "current").symlink_to(tmp_path / "r1")
    out = subprocess.run(
        [sys.executable, "-c", remote_facts._FACTS_SCRIPT, json.dumps(request.as_json())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    facts = HostFacts.from_json(json.loads(out))
    assert facts.state(str(tmp_path / "f")).size == 4
    assert facts.state(str(tmp_path / "l")).target == str(tmp_path / "f")
    assert facts.state(str(tmp_path / "none")).missing
    assert facts.text(str(tmp_path / "f")) == "hi\r\n"  # byte-exact, CRLF kept
    assert facts.user == UserIds(0, 0)
    assert set(facts.units) == {"web.service", "w@s:dag-processor.service"}
