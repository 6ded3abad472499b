"""STAGING_SLOT_CREDENTIALS and the basic-auth file (staging_ops/slot_access.py): parsing that
never echoes a password, SHA-512-crypt as crypt(3) computes it, and a file that stays the same
for the same credentials."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from staging_ops import slot_access
from staging_ops.errors import BadInput
from staging_ops.slot_access import (
    Credential,
    hash_matches,
    hide_hashes,
    htpasswd_entries,
    htpasswd_text,
    parse_credentials,
    sha512_crypt,
)


def test_credentials_parse_in_order() -> None:
    assert parse_credentials("ana:s3cret,bo.b@x:pa:ss") == (
        Credential("ana", "s3cret"),
        Credential("bo.b@x", "pa:ss"),  # a password may hold ':' (only the first splits)
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("justapassword", "entry 1: expected user:password"),
        ("ana:one,hunter2", "entry 2: expected user:password"),
        (":hunter2", "entry 1: the user name must be"),
        ("an a:hunter2", "entry 1: the user name must be"),
        ("ana:", "entry 1 (ana): the password is empty"),
        ("ana:hunter2,", "entry 2: expected user:password"),
        ("ana:hunter2,ana:hunter3", "entry 2: user 'ana' is given twice"),
        ("ana:hun\nter2", "entry 1 (ana): the password contains a line break"),
    ],
)
def test_a_malformed_value_is_one_line_without_the_password(value: str, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_credentials(value)
    text = str(caught.value)
    assert text.startswith(f"STAGING_SLOT_CREDENTIALS: {message}")
    assert "\n" not in text and "hunter" not in text and "justapassword" not in text
    assert caught.value.exit_code == 2


def test_a_credential_never_shows_its_password_in_a_repr() -> None:
    assert "hunter2" not in repr(parse_credentials("ana:hunter2"))


def _system_crypt(password: str, setting: str) -> str:
    """crypt(3) of this machine (libcrypt, as nginx calls it)."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib.crypt(password.encode(), setting.encode()).decode()


@pytest.mark.parametrize(
    ("password", "salt", "rounds"),
    [
        ("secret", "saltstring", 5000),
        ("x" * 200, "abc", 5000),  # longer than a digest: the P and B sequences repeat
        ("Hello world!", "saltstringsaltstring", 10000),  # salt cut at 16
        ("pä:ss wörd", "./AZaz09", 1000),  # UTF-8, as browsers send it
        ("a", "", 5000),
    ],
)
def test_sha512_crypt_is_the_systems(password: str, salt: str, rounds: int) -> None:
    ours = sha512_crypt(password, salt, rounds)
    assert ours == _system_crypt(password, ours[: ours.rfind("$")])
    assert hash_matches(ours, password)
    assert not hash_matches(ours, password + "x")


def test_a_fresh_hash_has_a_random_salt_and_checks_with_crypt() -> None:
    first, second = sha512_crypt("pw"), sha512_crypt("pw")
    assert first != second and first.startswith("$6$")
    assert _system_crypt("pw", first) == first


@pytest.mark.parametrize(
    "hashed", ["", "pw", "{SSHA}abc", "$apr1$x$y", "$6$rounds=5$salt$" + "a" * 86, "$6$s$short"]
)
def test_a_hash_it_cannot_check_is_no_match(hashed: str) -> None:
    assert not hash_matches(hashed, "pw")


def test_the_same_credentials_keep_the_same_file() -> None:
    credentials = parse_credentials("ana:one,bob:two")
    first = htpasswd_text(credentials, None)
    assert list(htpasswd_entries(first)) == ["ana", "bob"]
    assert htpasswd_text(credentials, first) == first
    # A new password gets a new hash; the other user keeps theirs, salt and all.
    changed = htpasswd_text(parse_credentials("ana:one,bob:three"), first)
    assert htpasswd_entries(changed)["ana"] == htpasswd_entries(first)["ana"]
    assert hash_matches(htpasswd_entries(changed)["bob"], "three")
    # A user removed is gone; one added comes in order.
    assert list(htpasswd_entries(htpasswd_text(parse_credentials("cy:x,bob:two"), first))) == [
        "cy",
        "bob",
    ]


def test_hidden_hashes_keep_the_users() -> None:
    text = htpasswd_text(parse_credentials("ana:one,bob:two"), None)
    assert hide_hashes(text) == "ana:********\nbob:********\n"
    assert "$6$" not in hide_hashes(text)


def test_missing_credentials_name_the_host_and_the_variable(monkeypatch) -> None:
    from staging_ops.inventory.model import Host

    locked = Host(name="staging", address="a.example", access="password")
    open_ = Host(name="other", address="b.example")
    monkeypatch.delenv(slot_access.ENV, raising=False)
    assert slot_access.missing_credentials([open_]) is None
    assert "host 'staging' has access" in (slot_access.missing_credentials([locked, open_]) or "")
    assert slot_access.probe_credential(locked) is None
    monkeypatch.setenv(slot_access.ENV, "ana:one,bob:two")
    assert slot_access.missing_credentials([locked]) is None
    assert slot_access.probe_credential(locked) == ("ana", "one")
    assert slot_access.probe_credential(open_) is None
