"""What a slot's instances listen on: the kernel's hex socket addresses read right (loopback or
not, IPv4 and IPv6), slot-instances.sh run with sh over real listening processes, and the one
line a deploy fails with (deploy/loopback.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from staging_ops.errors import StagingError
from staging_ops.remote.listeners import (
    beyond_loopback,
    decode,
    listening_problems,
    listens_beyond_loopback,
    listens_elsewhere,
    parse_listeners,
)

SCRIPTS = Path(__file__).resolve().parents[3] / "staging_ops" / "remote" / "scripts"


@pytest.mark.parametrize(
    ("local", "shown", "loopback"),
    [
        ("0100007F:1F41", "127.0.0.1:8001", True),
        ("0300007F:0050", "127.0.0.3:80", True),
        ("00000000:1F41", "0.0.0.0:8001", False),
        ("0500000A:0016", "10.0.0.5:22", False),
        ("00000000000000000000000001000000:1F41", "[::1]:8001", True),
        ("00000000000000000000000000000000:1F41", "[::]:8001", False),
        ("0000000000000000FFFF00000100007F:1F41", "[::ffff:127.0.0.1]:8001", True),
        ("0000000000000000FFFF00000500000A:1F41", "[::ffff:10.0.0.5]:8001", False),
    ],
)
def test_the_kernels_addresses_read_on_a_little_endian_droplet(local, shown, loopback):
    socket = decode(local)
    assert str(socket) == shown
    assert socket.loopback is loopback


def test_a_big_endian_host_writes_its_words_as_they_are():
    assert str(decode("7F000001:1F41", "big")) == "127.0.0.1:8001"


@pytest.mark.parametrize(
    "out",
    [
        "",
        "not json",
        '{"listening": []}',
        '{"slots": [{"current-web": ["0100007F"]}]}',
        '{"slots": [{"current-web": ["ZZ00007F:1F41"]}]}',
        '{"slots": [{"current-web": ["01007F:1F41"]}]}',
        '{"slots": [{}, {}]}',
        '{"slots": [["0100007F:1F41"]]}',
        '{"slots": [{"current-web": "0100007F:1F41"}]}',
    ],
)
def test_what_is_not_the_scripts_answer_is_refused(out):
    with pytest.raises(StagingError, match=r"slot-instances\.sh"):
        parse_listeners(out, 1)


def test_the_failure_line_names_the_type_the_addresses_and_the_mend():
    outside = (decode("00000000:1F41", "little"), decode("0100007F:1F42", "little"))
    line = listens_beyond_loopback("web", "candidate", outside)
    assert line == (
        "web (candidate) listens on 0.0.0.0:8001, beyond loopback: only nginx may face the "
        "network; bind it to 127.0.0.1 (e.g. `--bind 127.0.0.1:$PORT`)"
    )
    assert "--skip-serve-logs" in str(listens_beyond_loopback("scheduler", "current", outside))
    assert listens_beyond_loopback("web", "current", outside[1:]) is None


LISTEN = """
import socket, sys, time
socks = []
for host in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, 0)); s.listen(); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
time.sleep(60)
"""

# Run in a network namespace of its own (only its loopback exists there): the processes that
# bind every address reach nothing and are reached by nothing. Prints the script's answer and
# the ports each instance got, as JSON.
DRIVER = """
import json, os, signal, subprocess, sys
from pathlib import Path
slot, script, listen = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
def start_time(pid):
    return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()[19]
started, ports = [], {}
try:
    for name, hosts in (("current-web", ["127.0.0.1"]), ("current-scheduler", ["0.0.0.0", "::"])):
        parent = subprocess.Popen(
            ["sh", "-c", f'"{sys.executable}" -c "$0" "$@"; :', listen, *hosts],
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        started.append(parent)
        ports[name] = [int(p) for p in parent.stdout.readline().split()]
        pid_file = slot / "shared/tmp" / f"{name}.pid"
        pid_file.write_text(f"{parent.pid} {start_time(parent.pid)}\\n")
    (slot / "shared/tmp/candidate-web.pid").write_text(f"{started[0].pid} 1\\n")
    out = subprocess.run(
        ["sh", script, "listening", str(slot), str(slot.parent / "staging-2")],
        capture_output=True, text=True, check=True,
    ).stdout
finally:
    for parent in started:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
print(json.dumps({"out": out, "ports": ports}))
"""


def test_the_script_lists_each_instance_trees_sockets(tmp_path):
    """Real processes, each listening in a child of a shell (the unit's main process), as
    bin/run-process records them: current-web on loopback, current-scheduler on every
    address (IPv4 and IPv6); a pid file whose start time is another process's (a reused PID)
    is no running instance, and a slot without any answers {}."""
    slot = tmp_path / "staging-1"
    (slot / "shared" / "tmp").mkdir(parents=True)
    ran = subprocess.run(
        [
            "unshare",
            "--net",
            "--",
            sys.executable,
            "-c",
            DRIVER,
            str(slot),
            str(SCRIPTS / "slot-instances.sh"),
            LISTEN,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(ran.stdout)
    out, ports = answer["out"], answer["ports"]
    assert len(out.splitlines()) == 1
    one, two = parse_listeners(out, 2)
    # The reused PID's candidate-web and the never started current-airflow do not run.
    assert set(one) == {"current-web", "current-scheduler"} and two == {}
    web, scheduler = one["current-web"], one["current-scheduler"]
    assert [(str(s.address), s.port) for s in web] == [("127.0.0.1", ports["current-web"][0])]
    assert not beyond_loopback(web)
    assert sorted(str(s) for s in beyond_loopback(scheduler)) == sorted(
        [f"0.0.0.0:{ports['current-scheduler'][0]}", f"[::]:{ports['current-scheduler'][1]}"]
    )


def test_verify_names_what_listens_beyond_loopback_and_a_port_answered_by_another():
    web = decode("0100007F:1F41", "little")  # 127.0.0.1:8001
    public = decode("00000000:1F90", "little")  # 0.0.0.0:8080
    running = {"current-web": (web,), "current-airflow": (), "current-scheduler": (public,)}
    assert listening_problems(running, {"web": 8001, "airflow": 8081}) == [
        "scheduler (current) listens on 0.0.0.0:8080, beyond loopback: only nginx may face the "
        "network; a worker serves no one: turn its server off (Airflow's log server: "
        "`--skip-serve-logs`) or bind it to 127.0.0.1",
        "airflow (current) does not listen on 127.0.0.1:8081, its port: another process "
        "answers there",
    ]
    # Only the live release's port types are asked for (here: no airflow).
    assert listening_problems({"current-web": (web,)}, {"web": 8001}) == []
    # One that does not run is `down` in verify's process lines, not "another process answers".
    assert listening_problems({}, {"web": 8001, "airflow": 8081}) == []


def test_a_check_that_found_nobody_says_where_the_instance_listens_instead():
    other = decode("0100007F:1F40", "little")  # 127.0.0.1:8000
    own = decode("0100007F:1F41", "little")  # 127.0.0.1:8001
    assert listens_elsewhere((other,), 8001) == (
        "it listens on 127.0.0.1:8000 instead: it must serve $PORT (8001)"
    )
    assert listens_elsewhere((other, own), 8001) is None  # on its port too: not the reason
    assert listens_elsewhere((), 8001) is None  # on nothing: the check's failure says it all
