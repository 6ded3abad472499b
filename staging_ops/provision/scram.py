"""SCRAM-SHA-256 verifiers as PostgreSQL stores them (pg_authid.rolpassword), computed here,
so that a role's password reaches the server only as a verifier (a failed statement is logged
there), and a stored verifier can be checked against the env file's password."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import stringprep
import unicodedata

# pg_authid.rolpassword for SCRAM: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
_B64 = r"[A-Za-z0-9+/]+=*"
_SCRAM = re.compile(rf"^SCRAM-SHA-256\$(\d+):({_B64})\$({_B64}):({_B64})$")
SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
SCRAM_SALT_BYTES = 16  # as PostgreSQL generates


def _saslprep(password: str) -> str:
    """The password as PostgreSQL (server and libpq) hashes it: RFC 4013 SASLprep, or the
    password unchanged where SASLprep would refuse it, as pg_saslprep's callers do."""
    if password.isascii():
        return password  # pg_saslprep's shortcut: ASCII passes through
    mapped = [
        " " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c)
    ]
    if not mapped or any(_saslprep_prohibited(c) for c in mapped):
        return password
    if any(stringprep.in_table_d1(c) for c in mapped) and (
        any(stringprep.in_table_d2(c) for c in mapped)
        or not stringprep.in_table_d1(mapped[0])
        or not stringprep.in_table_d1(mapped[-1])
    ):
        return password
    return unicodedata.normalize("NFKC", "".join(mapped))


def _saslprep_prohibited(c: str) -> bool:
    return any(
        check(c)
        for check in (
            stringprep.in_table_c12,
            stringprep.in_table_c21_c22,
            stringprep.in_table_c3,
            stringprep.in_table_c4,
            stringprep.in_table_c5,
            stringprep.in_table_c6,
            stringprep.in_table_c7,
            stringprep.in_table_c8,
            stringprep.in_table_c9,
            stringprep.in_table_a1,
        )
    )


def _scram_keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) for the password, per RFC 5802 / RFC 7677."""
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return hashlib.sha256(client_key).digest(), server_key


def scram_verifier(password: str) -> str:
    """A SCRAM-SHA-256 verifier in pg_authid's format; PostgreSQL stores one given as the
    PASSWORD value as it is, so the plain password never reaches the server (or its log)."""
    salt = secrets.token_bytes(SCRAM_SALT_BYTES)
    stored_key, server_key = _scram_keys(password, salt, SCRAM_ITERATIONS)
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def verifier_matches(verifier: str | None, password: str) -> bool:
    """Whether a role's stored verifier (pg_authid.rolpassword) is for this password. No
    password, an md5 one or anything unparseable is no match: the role must be set again."""
    match = _SCRAM.match(verifier or "")
    if not match:
        return False
    iterations = int(match.group(1))
    if iterations < 1:
        return False
    try:
        salt, stored_key, server_key = (
            base64.b64decode(match.group(n), validate=True) for n in (2, 3, 4)
        )
    except binascii.Error:
        return False
    want_stored, want_server = _scram_keys(password, salt, iterations)
    return hmac.compare_digest(stored_key, want_stored) and hmac.compare_digest(
        server_key, want_server
    )
