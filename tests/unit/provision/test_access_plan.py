"""The basic-auth file of an `access = "password"` host, as provision-all decides it from the
facts (no host): which text (desired.access_file), and what the plan does with it (group,
mode, redacted diff, nginx reload and never a unit restart)."""

from __future__ import annotations

import dataclasses

import pytest

from staging_ops.errors import BadInput
from staging_ops.inventory import Inventory
from staging_ops.provision.desired import Desired, access_file, desired_state
from staging_ops.provision.plan import converge_plan
from staging_ops.remote.facts import HostFacts
from staging_ops.slot_access import (
    hash_matches,
    htpasswd_entries,
    htpasswd_path,
    htpasswd_text,
    parse_credentials,
)
from tests.unit.provision.plan_fixtures import PASSWORDS, host_facts, inventory

CREDENTIALS = parse_credentials("ops:first-pw,ana:second-pw")
WWW_DATA = 33


def _locked() -> Inventory:
    inv = inventory()
    host = dataclasses.replace(inv.hosts["d1"], access="password")
    return dataclasses.replace(inv, hosts={**inv.hosts, "d1": host})


def _facts(text: str | None, **state: object) -> HostFacts:
    """Facts of a host whose file holds `text` (None: no file)."""
    host = _locked().hosts["d1"]
    stat = {"type": "missing"} if text is None else {"type": "file", "sha256": "?", **state}
    return HostFacts.from_json(
        {"stat": {htpasswd_path(host): stat}, "content": {htpasswd_path(host): text}}
    )


def _want(text: str) -> Desired:
    inv = _locked()
    return desired_state(inv, inv.hosts["d1"], [inv.slots[1], inv.slots[2]], PASSWORDS, text)


def test_a_public_host_has_no_file_and_removes_one_left_behind() -> None:
    inv = inventory()
    host = inv.hosts["d1"]
    assert access_file(_facts("ops:x\n"), host, CREDENTIALS) is None
    want = desired_state(inv, host, [inv.slots[1]], PASSWORDS)
    assert htpasswd_path(host) not in want.files and htpasswd_path(host) in want.removes


def test_the_credentials_make_the_file_and_keep_the_hashes_that_still_match() -> None:
    host = _locked().hosts["d1"]
    first = access_file(_facts(None), host, CREDENTIALS)
    assert first is not None
    assert hash_matches(htpasswd_entries(first)["ana"], "second-pw")
    assert access_file(_facts(first), host, CREDENTIALS) == first


def test_without_credentials_the_droplets_file_is_kept_or_the_host_refused() -> None:
    host = _locked().hosts["d1"]
    kept = htpasswd_text(CREDENTIALS, None)
    assert access_file(_facts(kept), host, None) == kept
    for nothing in (None, "", "# no users\n"):
        with pytest.raises(BadInput, match="STAGING_SLOT_CREDENTIALS is not set"):
            access_file(_facts(nothing), host, None)


def _converged_facts(want: Desired, **htpasswd_state: object) -> HostFacts:
    facts = host_facts(want, {"base": "converged", "deployed": [1, 2]})
    path = htpasswd_path(want.host)
    stat = dict(facts.stat)
    stat[path] = dataclasses.replace(stat[path], **{"gid": WWW_DATA, **htpasswd_state})
    return dataclasses.replace(facts, stat=stat, groups={"www-data": WWW_DATA})


def test_a_converged_file_is_no_change() -> None:
    want = _want(htpasswd_text(CREDENTIALS, None))
    plan = converge_plan(want, _converged_facts(want))
    assert not plan.changes["nginx files"] and not plan.handlers.nginx


def test_the_files_group_is_nginxs_and_a_wrong_one_is_fixed() -> None:
    want = _want(htpasswd_text(CREDENTIALS, None))
    plan = converge_plan(want, _converged_facts(want, gid=0, mode=0o644))
    path = htpasswd_path(want.host)
    assert [(c.target, c.action) for c in plan.changes["nginx files"]] == [(path, "mode/owner")]
    write = next(w for w in plan.upload.writes if w.path == path)
    assert (write.mode, write.uid, write.gid) == (0o640, 0, WWW_DATA)


def test_a_new_password_is_an_nginx_reload_with_a_diff_that_shows_no_hash() -> None:
    old = htpasswd_text(CREDENTIALS, None)
    new = htpasswd_text(parse_credentials("ops:first-pw,ana:rotated-pw,cy:third-pw"), old)
    want = _want(new)
    facts = _converged_facts(_want(old))
    facts = dataclasses.replace(facts, content={**facts.content, htpasswd_path(want.host): old})
    plan = converge_plan(want, facts, diff=True)
    (change,) = plan.changes["nginx files"]
    assert change.action == "update"
    assert change.diff.splitlines()[-1] == "+cy:********"
    assert "$6$" not in change.diff
    assert not any(pw in change.diff for pw in ("first-pw", "rotated-pw", "third-pw"))
    assert plan.handlers.nginx and not plan.handlers.restart and not plan.handlers.daemon_reload
