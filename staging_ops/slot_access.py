"""Who may open a slot whose host says `access = "password"`: the users of
STAGING_SLOT_CREDENTIALS (`user:password[,user:password...]`, from the environment only), as
nginx's basic-auth file holds them (hashed), and as the toolkit's own probes send them.

Pure: parsing, SHA-512-crypt hashing (`$6$`, which Debian's nginx checks with the system's
crypt(3)) and the htpasswd text. The hashing is implemented here with hashlib because
Python's `crypt` module is deprecated and gone from 3.13; tests check it against crypt(3).

Nothing here ever puts a password into a message, a repr or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from staging_ops.errors import BadInput
from staging_ops.inventory import Host

ENV = "STAGING_SLOT_CREDENTIALS"
PUBLIC, PASSWORD = "public", "password"
# The basic-auth file nginx reads on every request (root:nginx_group, 0640), and what output
# shows instead of a hash.
HTPASSWD_NAME = "staging-slots.htpasswd"
HIDDEN = "********"
# A user name as htpasswd files and HTTP basic auth can carry it (no ':', no space, no ',').
_USER = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHA512_CRYPT = re.compile(r"^\$6\$(?:rounds=(\d+)\$)?([^$:\n]{0,16})\$([./0-9A-Za-z]{86})$")
# glibc's default: a hash without `rounds=` is 5000 rounds. nginx checks the hash on every
# request, in its worker: 5000 rounds cost about a millisecond there.
DEFAULT_ROUNDS = 5000
# SHA-512-crypt's output order of the 64 digest bytes, three at a time (Drepper's spec).
_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54),
    (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60),
    (40, 61, 19), (62, 20, 41),
)  # fmt: skip


@dataclass(frozen=True)
class Credential:
    """One user of STAGING_SLOT_CREDENTIALS. The password never shows in a repr."""

    user: str
    password: str = field(repr=False)


def parse_credentials(text: str) -> tuple[Credential, ...]:
    """`user:password[,user:password...]` -> the credentials, in order; BadInput (exit 2)
    naming the entry by its position (and its user, once that is known to be a user name),
    never echoing what was given: a malformed entry may be all password."""
    credentials: list[Credential] = []
    seen: set[str] = set()
    for index, entry in enumerate(text.split(","), start=1):
        where = f"{ENV}: entry {index}"
        user, colon, password = entry.partition(":")
        if not colon:
            raise BadInput(f"{where}: expected user:password (entries are separated by ',')")
        if not _USER.match(user):
            raise BadInput(
                f"{where}: the user name must be 1-64 letters, digits, '.', '_', '@' or '-'"
            )
        if not password:
            raise BadInput(f"{where} ({user}): the password is empty")
        if any(c in password for c in "\n\r\0"):
            raise BadInput(f"{where} ({user}): the password contains a line break or NUL")
        if user in seen:
            raise BadInput(f"{where}: user {user!r} is given twice")
        seen.add(user)
        credentials.append(Credential(user, password))
    return tuple(credentials)


def credentials_from_env(environ: Mapping[str, str] | None = None) -> tuple[Credential, ...] | None:
    """STAGING_SLOT_CREDENTIALS parsed (BadInput when malformed), or None when it is unset or
    empty."""
    text = (os.environ if environ is None else environ).get(ENV, "")
    return _parsed(text) if text else None


@lru_cache(maxsize=4)
def _parsed(text: str) -> tuple[Credential, ...]:
    # Every probe asks (status checks each slot twice): parse each value once.
    return parse_credentials(text)


def probe_credential(host: Host) -> tuple[str, str] | None:
    """(user, password) the toolkit's own requests through nginx send to `host`: the first
    user of STAGING_SLOT_CREDENTIALS when the host asks for a password, else None."""
    if host.access != PASSWORD:
        return None
    credentials = credentials_from_env()
    if not credentials:
        return None
    return credentials[0].user, credentials[0].password


def missing_credentials(hosts: list[Host]) -> str | None:
    """The one line a command that probes these hosts through nginx says when it cannot pass
    their basic auth (STAGING_SLOT_CREDENTIALS unset), or None. Malformed: BadInput."""
    credentials = credentials_from_env()
    locked = sorted({h.name for h in hosts if h.access == PASSWORD})
    if not locked or credentials:
        return None
    return (
        f'host {", ".join(repr(n) for n in locked)} has access = "password": set {ENV} '
        "(user:password[,user:password...]) so the toolkit's checks through nginx can log in"
    )


def htpasswd_path(host: Host) -> str:
    return f"{host.nginx_dir}/{HTPASSWD_NAME}"


# --- hashing ------------------------------------------------------------------------------------


def sha512_crypt(password: str, salt: str | None = None, rounds: int = DEFAULT_ROUNDS) -> str:
    """`$6$salt$hash` (with `rounds=N$` when not the default), as crypt(3) computes it."""
    if salt is None:
        salt = "".join(secrets.choice(_B64) for _ in range(16))
    rounds = min(max(rounds, 1000), 999_999_999)
    digest = _sha512_crypt_digest(password.encode(), salt[:16].encode(), rounds)
    prefix = "$6$" if rounds == DEFAULT_ROUNDS else f"$6$rounds={rounds}$"
    return f"{prefix}{salt[:16]}${digest}"


def hash_matches(hashed: str, password: str) -> bool:
    """Whether a `$6$` hash (ours, or anyone's) is for `password`. Any other format: no
    match, so provision-all writes a new hash rather than trust one it cannot check."""
    match = _SHA512_CRYPT.match(hashed)
    if not match:
        return False
    rounds = int(match.group(1)) if match.group(1) else DEFAULT_ROUNDS
    if match.group(1) and not 1000 <= rounds <= 999_999_999:
        return False
    want = _sha512_crypt_digest(password.encode(), match.group(2).encode(), rounds)
    return hmac.compare_digest(want, match.group(3))


def _sha512_crypt_digest(key: bytes, salt: bytes, rounds: int) -> str:
    """Drepper's SHA-512-crypt (https://www.akkadia.org/drepper/SHA-crypt.txt), steps 1-22."""
    sha = hashlib.sha512
    alternate = sha(key + salt + key).digest()
    a = sha(key + salt)
    a.update((alternate * (len(key) // 64 + 1))[: len(key)])
    n = len(key)
    while n:
        a.update(alternate if n & 1 else key)
        n >>= 1
    result = a.digest()
    p = (sha(key * len(key)).digest() * (len(key) // 64 + 1))[: len(key)]
    s = (sha(salt * (16 + result[0])).digest() * (len(salt) // 64 + 1))[: len(salt)]
    for i in range(rounds):
        c = sha(p if i & 1 else result)
        if i % 3:
            c.update(s)
        if i % 7:
            c.update(p)
        c.update(result if i & 1 else p)
        result = c.digest()
    out = []
    for b2, b1, b0 in _ORDER:
        out.append(_b64(result[b2] << 16 | result[b1] << 8 | result[b0], 4))
    out.append(_b64(result[63], 2))
    return "".join(out)


def _b64(value: int, chars: int) -> str:
    text = ""
    for _ in range(chars):
        text += _B64[value & 0x3F]
        value >>= 6
    return text


# --- the htpasswd file ----------------------------------------------------------------------------


def htpasswd_entries(text: str | None) -> dict[str, str]:
    """{user: hash} of an htpasswd file's text (comments and malformed lines skipped)."""
    entries: dict[str, str] = {}
    for line in (text or "").splitlines():
        user, colon, hashed = line.strip().partition(":")
        if colon and user and not user.startswith("#"):
            entries.setdefault(user, hashed)
    return entries


def htpasswd_text(credentials: tuple[Credential, ...], current: str | None) -> str:
    """The file for `credentials`, in their order. A user whose current hash is still for
    their password keeps it (its salt too), so the same credentials give the same file and
    a second provision-all changes nothing; a new or changed password gets a fresh hash."""
    have = htpasswd_entries(current)
    lines = []
    for credential in credentials:
        hashed = have.get(credential.user, "")
        if not hash_matches(hashed, credential.password):
            hashed = sha512_crypt(credential.password)
        lines.append(f"{credential.user}:{hashed}\n")
    return "".join(lines)


def hide_hashes(text: str) -> str:
    """An htpasswd text with every hash replaced by HIDDEN (output, diffs): who may log in
    shows, nothing that could be cracked does."""
    return re.sub(r"(?m)^([^#:\n][^:\n]*):[^\n]*$", rf"\1:{HIDDEN}", text)
