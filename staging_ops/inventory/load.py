"""Load and validate the inventory TOML into Host, Slot and App dataclasses.

Every error names the file, the slot (or host) and the field, and raises BadInput (exit 2)
before anything is touched.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from staging_ops.errors import BadInput
from staging_ops.inventory.model import ROLES, App, Host, Inventory, Slot
from staging_ops.inventory.webhook_settings import webhook_settings

# The operator's inventory, relative to the project (tasks.py resolves it against its own
# directory); the inventory is configuration, not package data.
DEFAULT_INVENTORY = Path("inventory") / "staging.toml"
# One DNS label: letters, digits, inner hyphens. Anything else (`;`, `{`, spaces, newlines)
# could break out of an nginx directive, so it is refused outright.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PG_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_UNIT_SAFE = re.compile(r"^[A-Za-z0-9_.:/@%${}=,+\- \"'*]+$")
_PATH = re.compile(r"^/[A-Za-z0-9_./@+-]*$")
_HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.:_~%/-]+$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_LIVE = re.compile(r"^/etc/letsencrypt/live/([A-Za-z0-9][A-Za-z0-9._-]*)/[^/]+$")
_UNIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,200}$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# Production's address (README: never connected to): only a protected host may have it.
PRODUCTION_ADDRESS = "167.99.0.168"


def inventory_path(config_value: str | None = None, default: Path = DEFAULT_INVENTORY) -> Path:
    """STAGING_INVENTORY wins, then Invoke config `staging.inventory`, then `default`."""
    chosen = os.environ.get("STAGING_INVENTORY") or config_value
    return Path(chosen) if chosen else default


def load_inventory(path: str | Path | None = None) -> Inventory:
    path = Path(path) if path else inventory_path()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: inventory file not found") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read inventory: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: malformed TOML: {exc}") from None
    return _Loader(path, raw).inventory()


class _Loader:
    def __init__(self, path: Path, raw: dict[str, Any]):
        self.path = path
        self.raw = raw

    def fail(self, where: str, field_name: str, problem: str) -> BadInput:
        return BadInput(f"{self.path}: {where}: field '{field_name}': {problem}")

    def inventory(self) -> Inventory:
        app = self.app(self._table(self.raw, "app", "[app]"))
        hosts_raw = self._table(self.raw, "hosts", "[hosts]")
        hosts = {
            name: self.host(name, self._table(hosts_raw, name, f"host '{name}'"))
            for name in hosts_raw
        }
        if not hosts:
            raise self.fail("[hosts]", "hosts", "at least one host is required")
        self.check_protected_addresses(hosts)
        slots_raw = self.raw.get("slots")
        if not isinstance(slots_raw, list) or not slots_raw:
            raise self.fail("[[slots]]", "slots", "at least one slot is required")
        slots = [self.slot(i, entry, hosts) for i, entry in enumerate(slots_raw, start=1)]
        self.check_unique(slots)
        return Inventory(self.path, app, hosts, {s.id: s for s in sorted(slots, key=_by_id)})

    def _table(self, raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.fail(where, key, "missing or not a table")
        return value

    def _str(
        self,
        raw: dict,
        key: str,
        where: str,
        default: str | None = None,
        pattern: re.Pattern | None = None,
    ) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(where, key, "required, must be a non-empty string")
        if "\n" in value or "\r" in value:
            raise self.fail(where, key, "must not contain a newline")
        if pattern and not pattern.match(value):
            raise self.fail(where, key, f"{value!r} is not valid")
        return value

    def _int(
        self,
        raw: dict,
        key: str,
        where: str,
        default: int | None = None,
        low: int = 1,
        high: int = 65535,
    ) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, key, f"{value!r} must be an integer")
        if not low <= value <= high:
            raise self.fail(where, key, f"{value} must be between {low} and {high}")
        return value

    def _hostname(self, raw: dict, key: str, where: str) -> str:
        """A host name or IP address: it is written into DATABASE_URL in the env files, where
        '@', '/', ':' or spaces would change what the URL means."""
        value = self._str(raw, key, where)
        if _is_ip(value):
            return value
        labels = value.rstrip(".").split(".")
        if len(value) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
            raise self.fail(where, key, f"{value!r} is not a host name or IP address")
        return value

    def app(self, raw: dict[str, Any]) -> App:
        w = "[app]"
        requirements = raw.get("requirements", ["requirements.txt"])
        if not isinstance(requirements, list) or not all(
            isinstance(r, str) and re.match(r"^[A-Za-z0-9_./-]+$", r) and ".." not in r
            for r in requirements
        ):
            raise self.fail(w, "requirements", "must be a list of relative file names")
        commands = {
            key: self._str(raw, key, w, pattern=_UNIT_SAFE)
            for key in (
                "ui_command",
                "airflow_webserver_command",
                "airflow_scheduler_command",
                "migrate_command",
            )
        }
        timeout = raw.get("verify_timeout", 60)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise self.fail(w, "verify_timeout", "must be a positive number of seconds")
        return App(
            name=self._str(raw, "name", w, pattern=_IDENTIFIER),
            repo_url=self._str(raw, "repo_url", w),
            requirements=tuple(requirements),
            python=self._str(raw, "python", w, default="python3", pattern=_UNIT_SAFE),
            verify_timeout=float(timeout),
            linear_url=self._str(raw, "linear_url", w, default=App.linear_url),
            **webhook_settings(raw, lambda key, problem: self.fail(w, key, problem)),
            **commands,
        )

    def host(self, name: str, raw: dict[str, Any]) -> Host:
        w = f"host '{name}'"
        if not re.match(r"^[A-Za-z0-9_-]+$", name):
            raise self.fail(w, "name", "host names are letters, digits, '-' and '_'")
        protected = raw.get("protected", False)
        if not isinstance(protected, bool):
            raise self.fail(w, "protected", "must be true or false")
        address = self._str(raw, "address", w, pattern=re.compile(r"^[A-Za-z0-9.:-]+$"))
        if protected:
            return Host(name=name, address=address, protected=True)
        kwargs: dict[str, Any] = {}
        for key in ("user", "service_user", "postgres_admin_user"):
            if key in raw:
                kwargs[key] = self._str(raw, key, w, pattern=re.compile(r"^[a-z_][a-z0-9_-]*$"))
        for key in (
            "base_dir",
            "nginx_dir",
            "systemd_dir",
            "tls_certificate",
            "tls_certificate_key",
            "key_file",
            "tls_ca",
            "acme_ca_bundle",
        ):
            if key in raw:
                kwargs[key] = self._str(raw, key, w, pattern=_PATH).rstrip("/") or "/"
        for key in ("port", "http_port", "https_port", "postgres_port", "public_port"):
            if key in raw:
                kwargs[key] = self._int(raw, key, w)
        for key in ("nginx_test_command", "nginx_reload_command"):
            if key in raw:
                kwargs[key] = self._str(raw, key, w)
        if "postgres_host" in raw:
            kwargs["postgres_host"] = self._hostname(raw, "postgres_host", w)
        if "listen_address" in raw:
            # Written into `listen ADDR:PORT;`: only a plain IP address may go there.
            value = raw["listen_address"]
            if value != "":
                if not isinstance(value, str) or not _is_ip(value) or "%" in value:
                    raise self.fail(w, "listen_address", f"{value!r} is not an IP address")
                kwargs["listen_address"] = str(ipaddress.ip_address(value))
        if "public_scheme" in raw:
            kwargs["public_scheme"] = self._str(
                raw, "public_scheme", w, pattern=re.compile(r"^https?$")
            )
        for key in ("tls_verify", "acme"):
            if key in raw:
                if not isinstance(raw[key], bool):
                    raise self.fail(w, key, "must be true or false")
                kwargs[key] = raw[key]
        if "acme_directory" in raw:
            kwargs["acme_directory"] = self._str(raw, "acme_directory", w, pattern=_HTTPS_URL)
        if "acme_email" in raw:
            kwargs["acme_email"] = self._str(raw, "acme_email", w, pattern=_EMAIL)
        if kwargs.get("acme"):
            self.check_acme_lineage(w, kwargs)
        if "boot_services" in raw:
            services = raw["boot_services"]
            if not isinstance(services, list) or not all(
                isinstance(x, str) and _UNIT_NAME.match(x) for x in services
            ):
                raise self.fail(w, "boot_services", "must be a list of systemd unit names")
            kwargs["boot_services"] = tuple(services)
        if "connect_timeout" in raw:
            kwargs["connect_timeout"] = float(self._int(raw, "connect_timeout", w, high=600))
        packages = raw.get("packages", [])
        if not isinstance(packages, list) or not all(
            isinstance(p, str) and re.match(r"^[a-z0-9][a-z0-9+.-]*$", p) for p in packages
        ):
            raise self.fail(w, "packages", "must be a list of Debian package names")
        return Host(name=name, address=address, packages=tuple(packages), **kwargs)

    def slot(self, index: int, raw: Any, hosts: dict[str, Host]) -> Slot:
        if not isinstance(raw, dict):
            raise self.fail(f"slot #{index}", "slots", "each [[slots]] entry must be a table")
        sid = raw.get("id")
        w = (
            f"slot {sid}"
            if isinstance(sid, int) and not isinstance(sid, bool)
            else f"slot #{index}"
        )
        slot_id = self._int(raw, "id", w, low=1, high=9999)
        subdomain = self._str(raw, "subdomain", w)
        labels = subdomain.split(".")
        if len(subdomain) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
            raise self.fail(w, "subdomain", f"{subdomain!r} is not a valid DNS name")
        role = self._str(raw, "role", w)
        if role not in ROLES:
            raise self.fail(w, "role", f"{role!r} is not one of {', '.join(ROLES)}")
        host = self._str(raw, "host", w, default=next(iter(hosts)))
        if host not in hosts:
            raise self.fail(w, "host", f"unknown host {host!r}")
        if hosts[host].protected:
            raise self.fail(w, "host", f"host {host!r} is protected: no slot may be placed on it")
        return Slot(
            id=slot_id,
            identifier=self._str(raw, "identifier", w, pattern=_IDENTIFIER),
            subdomain=subdomain,
            ui_port=self._int(raw, "ui_port", w, low=1024),
            airflow_port=self._int(raw, "airflow_port", w, low=1024),
            database=self._str(raw, "database", w, pattern=_PG_IDENT),
            role=role,
            host=host,
        )

    def check_acme_lineage(self, where: str, kwargs: dict[str, Any]) -> None:
        """certbot keeps a certificate in /etc/letsencrypt/live/NAME/: with ACME, the
        certificate and key paths must be that lineage's fullchain.pem and privkey.pem."""
        crt = kwargs.get("tls_certificate", Host.tls_certificate)
        key = kwargs.get("tls_certificate_key", Host.tls_certificate_key)
        match = _LIVE.match(crt)
        if not match or not crt.endswith("/fullchain.pem"):
            raise self.fail(
                where,
                "tls_certificate",
                f"{crt!r}: with acme = true it must be /etc/letsencrypt/live/NAME/fullchain.pem",
            )
        if key != f"/etc/letsencrypt/live/{match.group(1)}/privkey.pem":
            raise self.fail(
                where,
                "tls_certificate_key",
                f"{key!r}: with acme = true it must be /etc/letsencrypt/live/"
                f"{match.group(1)}/privkey.pem",
            )

    def check_protected_addresses(self, hosts: dict[str, Host]) -> None:
        """Production must not be reachable through a second, unprotected name."""
        protected = {_address_key(h.address): h.name for h in hosts.values() if h.protected}
        for host in hosts.values():
            if host.protected:
                continue
            other = protected.get(_address_key(host.address))
            if other is not None:
                raise self.fail(
                    f"host '{host.name}'",
                    "address",
                    f"{host.address!r} is the address of protected host '{other}': "
                    "mark it protected or use the staging droplet's address",
                )
            if _address_key(host.address) == PRODUCTION_ADDRESS:
                raise self.fail(
                    f"host '{host.name}'",
                    "address",
                    f"{host.address!r} is production's address: only a protected host may have it",
                )

    def check_unique(self, slots: list[Slot]) -> None:
        seen: dict[tuple[str, object], int] = {}
        for _index, slot in enumerate(slots):
            keys = [
                ("id", slot.id),
                ("identifier", slot.identifier),
                ("subdomain", slot.subdomain),
                ("database", slot.database),
                ("ui_port", slot.ui_port),
                ("airflow_port", slot.airflow_port),
            ]
            for name, value in keys:
                # Ports share one namespace: a UI port may not equal another slot's Airflow port.
                space = "port" if name.endswith("_port") else name
                other = seen.get((space, value))
                if other is not None:
                    raise self.fail(
                        f"slot {slot.id}", name, f"{value!r} is already used by slot {other}"
                    )
                seen[(space, value)] = slot.id


def _by_id(slot: Slot) -> int:
    return slot.id


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _address_key(address: str) -> str:
    """One spelling per address: DNS names are case-insensitive (a trailing dot is the same
    name), and an IP address has several spellings (::ffff:167.99.0.168, 0:0::1)."""
    text = address.strip().rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)
