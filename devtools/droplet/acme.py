"""A local ACME server for a droplet (`droplet.up --acme pebble`): Debian's pebble, with
pebble-challtestsrv as its DNS, run from this machine's binaries *inside the droplet's network
namespace* only. Every name resolves to 127.0.0.1 there, which is the droplet's own nginx, so
pebble validates HTTP-01 on port 80 through our nginx exactly as Let's Encrypt would through
DNS; nothing listens beyond the droplet's loopback, and nothing is installed in the droplet.

What the droplet's certbot needs to trust pebble's own HTTPS listener is written into the
droplet (LISTENER_CA_IN_DROPLET, for certbot's REQUESTS_CA_BUNDLE); the roots pebble issues
under are fetched to DIR/acme/roots.pem for this machine's health checks. Nowhere else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from devtools.droplet import proc
from staging_ops.errors import StagingError

DIRECTORY_URL = "https://127.0.0.1:14000/dir"
MANAGEMENT = "127.0.0.1:15000"
DNS = "127.0.0.1:8053"
CHALLTESTSRV_MANAGEMENT = "127.0.0.1:8055"
LISTENER_CA_IN_DROPLET = "/etc/staging-ops/acme/pebble-listener-ca.pem"
EMAIL = "staging-ops@justapply.net"
# Its DNS answers 127.0.0.1 (the droplet's nginx) for every name; its other servers are off.
CHALLTESTSRV = [
    "pebble-challtestsrv",
    *("-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""),
    *("-dns01", DNS, "-management", CHALLTESTSRV_MANAGEMENT),
    *("-http01", "", "-https01", "", "-tlsalpn01", ""),
]
# Pebble's default is about five years; a test may ask for short-lived certificates.
DEFAULT_VALIDITY_SECONDS = 90 * 86400


def acme_dir(droplet_dir: Path) -> Path:
    return droplet_dir / "acme"


def roots_path(droplet_dir: Path) -> Path:
    return acme_dir(droplet_dir) / "roots.pem"


def prepare(
    droplet_dir: Path,
    droplet_root: Path,
    validity: int = DEFAULT_VALIDITY_SECONDS,
    blocklist: tuple[str, ...] = (),
) -> Path:
    """Pebble's listener certificate and config in DIR/acme; the listener's CA into the
    droplet for certbot. Returns the config file. `blocklist`: names pebble refuses to issue
    for, as a real CA's policy refuses some."""
    here = acme_dir(droplet_dir)
    here.mkdir(exist_ok=True)
    key, cert = here / "listener.key", here / "listener.pem"
    if not cert.exists():
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "30", "-subj", "/CN=pebble listener (staging-ops droplet)",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        )  # fmt: skip
    inside = droplet_root / LISTENER_CA_IN_DROPLET.lstrip("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text(cert.read_text())
    config = here / "pebble-config.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": DIRECTORY_URL.split("/")[2],
                    "managementListenAddress": MANAGEMENT,
                    "certificate": str(cert),
                    "privateKey": str(key),
                    # Validate through our nginx, on the ports Let's Encrypt uses.
                    "httpPort": 80,
                    "tlsPort": 443,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                    "certificateValidityPeriod": validity,
                    "domainBlocklist": list(blocklist),
                }
            },
            indent=2,
        )
    )
    return config


def start(droplet_dir: Path, init_pid: int) -> dict[str, int]:
    """pebble-challtestsrv and pebble in the network namespace of the droplet whose PID 1 is
    `init_pid`; waits until pebble answers and fetches its roots. Returns their PIDs."""
    here = acme_dir(droplet_dir)
    net = ["nsenter", "-t", str(init_pid), "-n", "--"]
    pids = {"challtestsrv": _spawn([*net, *CHALLTESTSRV], here / "challtestsrv.log")}
    env = {
        **os.environ,
        # Validate at once, and never refuse a good nonce: tests want determinism.
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
    }
    pids["pebble"] = _spawn(
        [*net, "pebble", "-config", str(here / "pebble-config.json"), "-dnsserver", DNS],
        here / "pebble.log",
        env,
    )
    roots = _wait_for_roots(init_pid, here / "listener.pem", pids["pebble"], here / "pebble.log")
    if not proc.alive(pids["challtestsrv"]):
        stop(droplet_dir, pids)
        tail = (here / "challtestsrv.log").read_text(errors="replace").strip().splitlines()[:1]
        raise StagingError(f"droplet: pebble-challtestsrv did not start: {' '.join(tail)}")
    # Keep the roots of earlier runs too (pebble makes new ones each start): certificates
    # issued before a restart still verify.
    known = roots_path(droplet_dir).read_text() if roots_path(droplet_dir).exists() else ""
    if roots not in known:
        roots_path(droplet_dir).write_text(known + roots)
    return pids


def stop(droplet_dir: Path, pids: dict[str, int]) -> list[str]:
    """Stop the ACME processes among `pids` (only those whose command line names our
    config or is challtestsrv's with our DNS address)."""
    config = str(acme_dir(droplet_dir) / "pebble-config.json")
    done = []
    for name in ("pebble", "challtestsrv"):
        pid = pids.get(name)
        if not pid:
            continue
        marker = config if name == "pebble" else DNS

        def ours(p: int, marker: str = marker) -> bool:
            return marker in proc.command_line(p).split("\0")

        if proc.stop_pid(pid, ours, signal.SIGTERM, timeout=5):
            done.append(name)
    return done


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    with log.open("ab") as out:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # outlives `invoke droplet.up`, like the droplet
        )
    return process.pid


def _wait_for_roots(init_pid: int, listener_ca: Path, pebble_pid: int, log: Path) -> str:
    deadline = time.monotonic() + 15
    while True:
        result = subprocess.run(
            ["nsenter", "-t", str(init_pid), "-n", "--", "curl", "-sf", "--noproxy", "*",
             "--cacert", str(listener_ca), f"https://{MANAGEMENT}/roots/0"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode == 0 and "BEGIN CERTIFICATE" in result.stdout:
            return result.stdout if result.stdout.endswith("\n") else result.stdout + "\n"
        if not proc.alive(pebble_pid) or time.monotonic() > deadline:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise StagingError(f"droplet: pebble did not start: {tail or 'no output'}")
        time.sleep(0.1)


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StagingError(f"droplet: openssl {args[0]} failed: {result.stderr.strip()[-200:]}")
