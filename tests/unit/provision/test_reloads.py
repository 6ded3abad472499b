"""Which deployed slots provision-all reloads, how and why (provision.reloads, pure): from the
files a run writes and the facts, as the plan fixtures state them."""

from __future__ import annotations

import json

import pytest

from staging_ops.provision.reloads import HANDOVER, IN_PLACE, PENDING, FileChange, carried, reloads
from tests.unit.provision.plan_fixtures import desired, host_facts

UNITS = "/etc/systemd/system"
SLOT1 = "/srv/staging/staging-1"
PROCFILE_SPEC = json.dumps(
    {
        "source": "Procfile",
        "processes": {"web": "gunicorn", "airflow": "airflow webserver", "dag-processor": "x"},
        "healthchecks": {},
    }
)


def plan(changed: list[FileChange], verified: bool = True, spec: str | None = None, pending=()):
    want = desired()
    stat = {f"{SLOT1}/current/.ok": {"type": "file"}} if verified else {}
    content = {f"{SLOT1}/current/.process-spec.json": spec} if spec else {}
    facts = host_facts(
        want, {"base": "converged", "deployed": [1], "stat": stat, "content": content}
    )
    slot1 = [s for s in want.slots if s.id == 1]
    return {
        r.slot.identifier: (r.how, r.why) for r in reloads(want, changed, slot1, facts, pending)
    }


@pytest.mark.parametrize(
    ("changed", "spec", "expected"),
    [
        ([FileChange(f"{SLOT1}/shared/app.env", "env", "update")], None, "env app.env"),
        ([FileChange(f"{SLOT1}/shared/env", "env", "create")], None, "env env"),
        ([FileChange(f"{SLOT1}/shared/candidate.env", "env", "update")], None, "env candidate.env"),
        # A mode or owner fix changes nothing a process reads.
        ([FileChange(f"{SLOT1}/shared/env", "env", "mode/owner")], None, None),
        # Another slot's env is not this slot's.
        ([FileChange("/srv/staging/staging-2/shared/env", "env", "update")], None, None),
        (
            [FileChange(f"{UNITS}/job-search-ui@.service", "unit", "update")],
            None,
            "unit job-search-ui@.service",
        ),
        # Candidate templates: no running process reads them (the next deploy's candidate will).
        ([FileChange(f"{UNITS}/job-search-ui-candidate@.service", "unit", "update")], None, None),
        # The worker template: only a release that declares a worker type runs it.
        ([FileChange(f"{UNITS}/job-search-worker@.service", "unit", "update")], None, None),
        (
            [FileChange(f"{UNITS}/job-search-worker@.service", "unit", "update")],
            PROCFILE_SPEC,
            "unit job-search-worker@.service",
        ),
        # The scheduler's template: a Procfile release without a scheduler does not run it.
        (
            [FileChange(f"{UNITS}/job-search-airflow-scheduler@.service", "unit", "update")],
            PROCFILE_SPEC,
            None,
        ),
        (
            [FileChange("/srv/staging/bin/run-process", "unit", "update")],
            PROCFILE_SPEC,
            "runner bin/run-process",
        ),
        # The inventory's commands: only for a release that runs them (no Procfile).
        (
            [FileChange("/srv/staging/bin/app.processes", "unit", "update")],
            None,
            "commands bin/app.processes",
        ),
        ([FileChange("/srv/staging/bin/app.processes", "unit", "update")], PROCFILE_SPEC, None),
        # nginx is reloaded, never a reason to restart a slot's processes.
        (
            [
                FileChange(
                    "/etc/nginx/sites-available/staging-1.justapply.net.conf", "nginx", "update"
                )
            ],
            None,
            None,
        ),
        (
            [
                FileChange(f"{SLOT1}/shared/app.env", "env", "update"),
                FileChange(f"{UNITS}/job-search-ui@.service", "unit", "update"),
            ],
            None,
            "env app.env; unit job-search-ui@.service",
        ),
    ],
)
def test_a_deployed_slot_is_reloaded_for_what_its_processes_read(changed, spec, expected):
    found = plan(changed, spec=spec)
    assert found == ({"staging-1": (HANDOVER, expected)} if expected else {})


def test_a_live_release_never_verified_is_restarted_in_place():
    changed = [FileChange(f"{SLOT1}/shared/app.env", "env", "update")]
    assert plan(changed, verified=False) == {"staging-1": (IN_PLACE, "env app.env")}


def test_an_earlier_runs_pending_reload_is_done_with_nothing_changed():
    assert plan([], pending=("staging-1",)) == {"staging-1": (HANDOVER, PENDING)}
    assert plan([], pending=("staging-2",)) == {}


def test_slots_outside_a_limited_run_keep_their_pending_reload_and_take_shared_changes():
    want = desired()  # slots 1 and 2 of d1; staging-10 is on the host too
    assert carried(want, ("staging-1", "staging-10"), []) == ("staging-10",)
    unit = FileChange(f"{UNITS}/job-search-ui@.service", "unit", "update")
    assert carried(want, (), [unit]) == ("staging-10",)
    assert carried(want, (), [FileChange("/srv/staging/bin/run-process", "unit", "update")]) == (
        "staging-10",
    )
    # A slot's own env file, a created file (a host without it ran nothing on it): no.
    assert carried(want, (), [FileChange(f"{SLOT1}/shared/env", "env", "update")]) == ()
    assert (
        carried(want, (), [FileChange(f"{UNITS}/job-search-ui@.service", "unit", "create")]) == ()
    )
