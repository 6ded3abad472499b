"""TLS for every slot over ACME: what a host's certificate needs (pure), and the commands that
get it. One certificate per host with all its slots' names: one ACME order and one renewal per
droplet instead of ten, one pair of files for nginx, and a slot added to the inventory is one
`--expand` away (docs/architecture.md says why, and what it costs).

nginx never points at certbot's files directly: it loads `<nginx_dir>/tls/fullchain.pem` and
`privkey.pem`, links that provision-all points at certbot's live lineage once it exists, and
until then at a self-signed placeholder for the same names (so nginx can serve the HTTP-01
challenge, and HTTPS, on a fresh droplet before any certificate exists). The links are nginx
files like the vhosts: `nginx -t` before any reload, and put back when it fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from staging_ops.inventory import Host, Slot
from staging_ops.tls import CertificateFacts, covers, days_text

RENEW_WITHIN = timedelta(days=30)
LIVE_PREFIX = "/etc/letsencrypt/live/"


@dataclass(frozen=True)
class CertificatePlan:
    """`request` the names (and why), or nothing to do."""

    names: tuple[str, ...]
    request: bool
    reason: str

    @property
    def summary(self) -> str:
        return f"{self.reason}: {', '.join(self.names)}" if self.request else self.reason


def acme_enabled(host: Host) -> bool:
    return host.acme


def lineage(host: Host) -> str:
    """certbot's --cert-name: the directory of the host's certificate under
    /etc/letsencrypt/live/ (the inventory's tls_certificate path names it)."""
    return host.tls_certificate.removeprefix(LIVE_PREFIX).split("/", 1)[0]


def wanted_names(slots: list[Slot]) -> tuple[str, ...]:
    return tuple(sorted({s.subdomain for s in slots}))


def plan_certificate(
    names: tuple[str, ...], have: CertificateFacts, now: datetime
) -> CertificatePlan:
    """Whether the host's certificate must be requested: none yet, a name missing from it
    (a slot added: expand), or it expires within RENEW_WITHIN. Otherwise no ACME server is
    contacted."""
    if not names:
        return CertificatePlan(names, False, "no slots")
    if not have.exists:
        return CertificatePlan(names, True, "no certificate yet")
    missing = [n for n in names if not covers(have.names, n)]
    if missing:
        return CertificatePlan(names, True, f"not on the certificate: {', '.join(missing)}")
    if have.not_after is None or have.not_after - now <= RENEW_WITHIN:
        left = "unknown" if have.not_after is None else days_text(have.not_after - now)
        return CertificatePlan(names, True, f"expires in {left}: renew")
    return CertificatePlan(names, False, f"valid for {days_text(have.not_after - now)}")


def certbot_arguments(host: Host, names: tuple[str, ...], webroot: str) -> list[str]:
    """The arguments of the droplet's ACME script (scripts/acme-certbot.sh): the CA bundle
    that trusts the ACME server (or ''), then certbot's own arguments. Non-interactive, webroot
    mode through the challenge location nginx already serves; --keep-until-expiring and
    --expand: certbot itself asks the server only for a new name or a due renewal; the deploy
    hook reloads nginx after `nginx -t` on every renewal, so nginx never loads a certificate
    it cannot read."""
    args = [
        host.acme_ca_bundle or "",
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--no-eff-email",
        "--webroot",
        "--webroot-path",
        webroot,
        "--cert-name",
        lineage(host),
        "--server",
        host.acme_directory,
        "--keep-until-expiring",
        "--expand",
        "--deploy-hook",
        f"{host.nginx_test_command} && {host.nginx_reload_command}",
    ]
    args += (
        ["--email", host.acme_email] if host.acme_email else ["--register-unsafely-without-email"]
    )
    for name in names:
        args += ["--domain", name]
    return args
