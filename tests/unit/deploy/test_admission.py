"""The memory admission (deploy/admission.py): the pure decision from a table, the parser of
slot-instances.sh's answer, and slot-instances.sh itself run with sh over real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from staging_ops.deploy.admission import decide
from staging_ops.errors import StagingError
from staging_ops.remote.memory import SlotMemory, parse_memory
from staging_ops.remote.scripts import SCRIPTS

MB = 1024  # kB

# (case, MemAvailable kB, the slot's instances in kB, port types, estimate MB, reserve MB,
#  fits, what the candidate needs in MB)
CASES = [
    ("measured, fits", 4000 * MB, {"current-web": 100 * MB, "current-airflow": 500 * MB},
     ("web", "airflow"), 300, 256, True, 600),
    ("measured, would eat into the reserve", 800 * MB,
     {"current-web": 100 * MB, "current-airflow": 500 * MB}, ("web", "airflow"), 300, 256,
     False, 600),
    ("exactly the reserve left", 856 * MB, {"current-web": 100 * MB, "current-airflow": 500 * MB},
     ("web", "airflow"), 300, 256, True, 600),
    ("first deploy: both estimated", 1000 * MB, {}, ("web", "airflow"), 300, 256, True, 600),
    ("first deploy, a small droplet", 700 * MB, {}, ("web", "airflow"), 300, 256, False, 600),
    ("a type the release adds is estimated", 4000 * MB, {"current-web": 100 * MB},
     ("web", "airflow"), 300, 0, True, 400),
    ("only the release's port types count", 4000 * MB,
     {"current-web": 100 * MB, "current-airflow": 500 * MB, "current-scheduler": 900 * MB},
     ("web",), 300, 0, True, 100),
    ("a leftover candidate is stopped first: its memory counts as free", 500 * MB,
     {"current-web": 400 * MB, "candidate-web": 400 * MB}, ("web",), 300, 256, True, 400),
    ("needs round up", 1000 * MB, {"current-web": 100 * MB + 1}, ("web",), 300, 900, False, 101),
    ("nothing to start always fits", 0, {"current-scheduler": 900 * MB}, (), 300, 256, True, 0),
    ("the reserve alone is more than the droplet has", 100 * MB, {"current-web": 1}, ("web",),
     300, 1024 * 1024, False, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("available", "instances", "types", "estimate", "reserve", "fits", "need"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision_table(available, instances, types, estimate, reserve, fits, need):
    verdict = decide(available, SlotMemory(instances), types, estimate, reserve)
    assert verdict.fits is fits
    assert verdict.need_mb == need


def test_the_refusal_is_one_line_with_what_it_needs_and_what_is_free():
    verdict = decide(600 * MB, SlotMemory({"current-web": 100 * MB}), ("web", "airflow"), 300, 256)
    assert not verdict.fits
    line = verdict.refusal()
    assert "\n" not in line
    assert line == (
        "not enough memory for the hand-over: it needs 656 MB (candidate web 100 MB measured"
        " + airflow 300 MB estimated, candidate_memory_mb + memory_reserve_mb 256 MB kept free),"
        " the droplet has 600 MB available; no candidate was started"
    )


def test_the_step_detail_names_each_figure():
    verdict = decide(
        4000 * MB,
        SlotMemory({"current-web": 10 * MB, "candidate-web": 5 * MB}),
        ("web",),
        300,
        256,
    )
    assert verdict.detail() == (
        "candidate 10 MB (web 10 MB measured), 4000 MB available"
        " (+5 MB of a leftover candidate), 256 MB kept free"
    )


def test_parse_memory():
    out = (
        '{"available": 2048000, "slots": [{"current-web": 1024, "current-airflow": 2048}, {},'
        ' {"candidate-web": 512}]}\n'
    )
    reading = parse_memory(out, 3)
    available, slots = reading.available_kb, reading.slots
    assert available == 2048000
    assert slots[0].of("current", "airflow") == 2048 and slots[0].of("candidate", "web") is None
    assert slots[0].total_mb == 3 and slots[1].instances == {}
    assert slots[2].candidates_kb() == 512


@pytest.mark.parametrize(
    "out",
    [
        "",
        "available 1\n-\n",  # the old line format
        '{"available": 1, "slots": []}',  # no slot: one was asked for
        '{"available": "x", "slots": [{}]}',
        '{"available": 1, "slots": [{"web": "many"}]}',
        '{"free": 1, "slots": [{}]}',
        '{"available": 1, "slots": [[]]}',
    ],
)
def test_parse_memory_refuses_what_is_not_the_scripts_answer(out):
    with pytest.raises(StagingError, match=r"slot-instances\.sh"):
        parse_memory(out, 1)


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()[19]


def test_slot_memory_sums_each_instance_tree_and_ignores_a_reused_pid(tmp_path):
    """Real processes: a parent holding 40 MB in a child, recorded as slot 1's current-web;
    a pid file whose start time is not its process's (a reused PID) counts nothing."""
    hold = "import sys, time; b = bytearray(40 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print(1, flush=True); time.sleep(60)"  # noqa: E501
    parent = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" -c "{hold}"; :'],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout and parent.stdout.readline().strip() == "1"
        slot1, slot2 = tmp_path / "staging-1", tmp_path / "staging-2"
        for slot in (slot1, slot2):
            (slot / "shared" / "tmp").mkdir(parents=True)
        (slot1 / "shared/tmp/current-web.pid").write_text(
            f"{parent.pid} {_start_time(parent.pid)}\n"
        )
        (slot2 / "shared/tmp/current-web.pid").write_text(f"{parent.pid} 1\n")
        started = time.monotonic()
        out = subprocess.run(
            ["sh", str(SCRIPTS / "slot-instances.sh"), "memory", str(slot1), str(slot2)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        elapsed = time.monotonic() - started
    finally:
        parent.kill()
        parent.wait()
    assert len(out.splitlines()) == 1
    reading = parse_memory(out, 2)
    available, (one, two) = reading.available_kb, reading.slots
    meminfo = Path("/proc/meminfo").read_text()
    assert 0 < available <= int(meminfo.split("MemTotal:")[1].split()[0])
    assert 40 * MB <= one.of("current", "web") < 80 * MB  # the child's 40 MB, under its parent
    assert two.instances == {}
    assert elapsed < 1.0
