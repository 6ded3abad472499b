"""HTTP checks of a slot through the droplet's nginx, exactly as a browser would reach it.

The request goes to the host's address but carries the slot's name both as TLS SNI and as the
Host header, so it works for the real droplet (DNS) and for the sandbox (loopback, own CA).
"""

from __future__ import annotations

import socket
import ssl
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import requests
import urllib3
from cryptography import x509
from requests.adapters import HTTPAdapter

from staging_ops import slot_access
from staging_ops.drift import Drift, LiveRelease, live_json, of_slot
from staging_ops.inventory import Host, Inventory, Slot
from staging_ops.jsondoc import JSONObject
from staging_ops.processes.judge import AIRFLOW2_HEALTH, VERSION_PATH, airflow_fallback
from staging_ops.processes.status import HealthAnswer, Processes
from staging_ops.tls import CertificateFacts, certificate_problem

CHECKS = {"ui": VERSION_PATH, "airflow": AIRFLOW2_HEALTH}


class _SlotNameAdapter(HTTPAdapter):
    """Sends SNI and verifies the certificate for the slot's name, whatever address we dial."""

    def __init__(self, server_name: str):
        self._server_name = server_name
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._server_name
        kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def slot_session(slot: Slot) -> requests.Session:
    """A session for the slot's public HTTPS endpoint (slot_get's; kept open, it reuses its
    connection to nginx)."""
    session = requests.Session()
    # Straight to the host: a proxy from HTTPS_PROXY would be asked instead (off loopback in
    # tests), and the pinned TLS name would not reach nginx through it.
    session.trust_env = False
    session.mount("https://", _SlotNameAdapter(slot.subdomain))
    return session


def slot_get(
    host: Host,
    slot: Slot,
    path: str,
    timeout: float = 5.0,
    session: requests.Session | None = None,
) -> requests.Response:
    """GET `path` on the slot's public HTTPS endpoint (on `session`, kept open, else on a
    new one), logged in as the first user of STAGING_SLOT_CREDENTIALS when the host has
    `access = "password"`."""
    credential = slot_access.probe_credential(host)
    # As bytes: UTF-8, as browsers send it and as the hash was made (requests would try
    # Latin-1 for a str).
    auth = tuple(part.encode() for part in credential) if credential else None
    with nullcontext(session) if session else slot_session(slot) as session:
        port = host.public_port or host.https_port
        with warnings.catch_warnings():
            # tls_verify = false is the inventory's choice: no warning for every check.
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            return session.get(
                f"https://{host.address}:{port}{path}",
                headers={"Host": slot.subdomain},
                verify=(host.tls_ca or True) if host.tls_verify else False,
                timeout=timeout,
                allow_redirects=False,
                auth=auth,
            )


def served_certificate(host: Host, slot: Slot, timeout: float = 5.0) -> CertificateFacts:
    """The certificate nginx serves for the slot's name (SNI), whatever it is: read, not
    trusted, so that status/verify can say what is wrong with it (expired, another name)."""
    port = host.public_port or host.https_port
    with (
        socket.create_connection((host.address, port), timeout=timeout) as raw,
        _reading_context().wrap_socket(raw, server_hostname=slot.subdomain) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        return CertificateFacts(exists=False)
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = frozenset(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = frozenset()
    return CertificateFacts(True, names, cert.not_valid_after_utc, cert.issuer.rfc4514_string())


@cache
def _reading_context() -> ssl.SSLContext:
    """One context for every certificate read: it trusts nothing, so it loads no CA bundle
    (create_default_context loads the system's, ~20 ms of CPU each, once per slot)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class CertificateCheck:
    """The certificate nginx serves for a slot, for status and verify: when it expires (ISO
    time), who issued it, and what is wrong with it (one line) or None."""

    expires: str | None
    issuer: str | None
    problem: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"expires": self.expires, "issuer": self.issuer, "problem": self.problem}


def certificate_check(host: Host, slot: Slot, timeout: float = 5.0) -> CertificateCheck:
    """The certificate nginx serves for `slot` (SNI), judged."""
    try:
        have = served_certificate(host, slot, timeout)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        return CertificateCheck(None, None, f"no TLS answer ({type(exc).__name__})")
    return CertificateCheck(
        expires=have.not_after.isoformat() if have.not_after else None,
        issuer=have.issuer or None,
        problem=certificate_problem(slot.subdomain, have, datetime.now(UTC)),
    )


def _version_answer(host: Host, slot: Slot, timeout: float) -> tuple[bool, Any]:
    """(whether the slot's /api/version answered 200, its JSON or None when it is not JSON):
    the one request behind both public_version and status's UI check."""
    try:
        response = slot_get(host, slot, CHECKS["ui"], timeout)
    except (requests.RequestException, ValueError):
        return False, None
    if response.status_code != 200:
        return False, None
    try:
        return True, response.json()
    except ValueError:
        return True, None


def public_version(host: Host, slot: Slot, timeout: float = 5.0) -> JSONObject | None:
    """The slot's /api/version JSON through nginx, or None when it does not answer with one."""
    return _version_answer(host, slot, timeout)[1]


def airflow_health(host: Host, slot: Slot, timeout: float = 3.0) -> HealthAnswer:
    """Airflow's health answer through nginx, its JSON kept: a 200 says only that the
    webserver answers (Airflow 2 and 3 both answer 200 while the scheduler is unhealthy);
    which component is healthy is in the body."""
    path = CHECKS["airflow"]
    try:
        response = slot_get(host, slot, path, timeout)
        other = airflow_fallback(path, response.status_code)
        if other:
            path = other
            response = slot_get(host, slot, path, timeout)
        return HealthAnswer.from_body(path, response.status_code, response.content)
    except requests.RequestException:
        return HealthAnswer(path, ok=False)


def _probe_ui(host: Host, slot: Slot, timeout: float) -> tuple[str, str | None]:
    """("up"|"down", the commit /api/version serves or None): one request for both, so drift
    costs status nothing more. Up is a 200, as for every other check; the commit only when the
    answer is the version JSON."""
    answered, answer = _version_answer(host, slot, timeout)
    commit = answer.get("commit") if isinstance(answer, dict) else None
    return "up" if answered else "down", commit if isinstance(commit, str) else None


@dataclass(frozen=True)
class SlotChecks:
    """One slot's probes through nginx: whether its UI's /api/version answers 200 ("up" or
    "down") and the commit it serves (None: no version JSON), Airflow's health answer (its
    JSON kept, judged per process by the caller) and the certificate, as certificate_check
    says."""

    ui: str
    served: str | None
    airflow_answer: HealthAnswer
    certificate: CertificateCheck

    @property
    def airflow(self) -> str:
        return "up" if self.airflow_answer.ok else "down"


@dataclass(frozen=True)
class LiveChecks:
    """A slot's live health as status and the dashboard keep it: the probes through nginx
    (None: they could not run at all), the release `current` points to (None: not read, and
    `unread` says why), the PSS of its processes in MB (None: not read) and each process the
    live release declares, judged (None: not read)."""

    probes: SlotChecks | None = None
    live: LiveRelease | None = None
    unread: str = "not read"
    memory_mb: int | None = None
    processes: Processes | None = None

    @property
    def served(self) -> str | None:
        return self.probes.served if self.probes else None

    def live_json(self) -> JSONObject:
        return live_json(self.live, self.unread)

    def drift(self, registry_commit: str | None, status: str | None) -> Drift:
        """The drift verdict against the registry's commit and the claim's status."""
        return of_slot(registry_commit, status, self.live, self.served, self.unread)


def check_slots(
    inventory: Inventory, slots: list[Slot], timeout: float = 3.0
) -> dict[int, SlotChecks]:
    """Each slot's probes through nginx, all in parallel."""
    jobs = [(slot, name) for slot in slots for name in (*CHECKS, "certificate")]
    if not jobs:
        return {}

    def run(job: tuple[Slot, str]) -> Any:
        slot, name = job
        host = inventory.host_of(slot)
        if name == "certificate":
            return certificate_check(host, slot, timeout)
        if name == "ui":
            return _probe_ui(host, slot, timeout)
        return airflow_health(host, slot, timeout)

    with ThreadPoolExecutor(max_workers=min(32, len(jobs))) as pool:
        found: dict[tuple[int, str], Any] = {
            (slot.id, name): answer
            for (slot, name), answer in zip(jobs, pool.map(run, jobs), strict=True)
        }
    return {
        slot.id: SlotChecks(
            *found[slot.id, "ui"], found[slot.id, "airflow"], found[slot.id, "certificate"]
        )
        for slot in slots
    }
