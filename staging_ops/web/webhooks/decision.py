"""What the webhook modules share: the HMAC check, the decision a payload leads to, and safe
reading of untrusted JSON.

Every function here is pure: bytes and dicts in, a bool or a Decision out. Nothing a sender
puts in a payload (wrong types, missing fields, huge numbers) raises: it becomes an "ignore"
decision that says why.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

RELEASE = "release"
DEPLOY = "deploy"
IGNORE = "ignore"
PING = "ping"
# An actor's name as recorded in the history: what a login or display name reasonably is.
_ACTOR = re.compile(r"^[\w .@+-]{1,100}$")
# A link recorded in the history: http(s), no spaces or control characters.
_LINK = re.compile(r"^https?://[\x21-\x7e]{1,500}$")


@dataclass(frozen=True)
class Decision:
    """What to do about a verified delivery: release the slot of `branch` (GitHub) or `task`
    (Linear), deploy `commit` of `branch` to the slots holding it (a GitHub push; no commit:
    the branch was deleted), or nothing (`message` says why). `reason` goes into the
    history."""

    action: str
    message: str
    branch: str | None = None
    task: str | None = None
    reason: str = ""
    actor: str | None = None
    commit: str | None = None


def ignore(message: str) -> Decision:
    return Decision(IGNORE, message)


def hmac_hex(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `body` with `secret`, as both GitHub and Linear send it."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, given: str | None) -> bool:
    """Whether `given` (hex) is the HMAC of exactly these bytes; compared in constant time."""
    if not given or not secret:
        return False
    return hmac.compare_digest(hmac_hex(secret, body).encode(), given.strip().lower().encode())


def body_digest(body: bytes) -> str:
    """The delivery key of a body: a replay of the same signed bytes has the same one."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def text_at(data: object, *path: str) -> str | None:
    """`data[path[0]][path[1]]...` if every step is a dict and the end is a string, else None."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data if isinstance(data, str) else None


def value_at(data: object, *path: str) -> object:
    """`data[path[0]]...`, or None where a step is missing or not a dict."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def link_at(data: object, *path: str) -> str:
    """The http(s) URL at `path`, or "" when there is none worth recording."""
    value = text_at(data, *path)
    return value if value and _LINK.match(value) else ""


def plain_name(value: str | None) -> str | None:
    """A login, display name or state name if it is plain enough to record, else None."""
    return value if value and _ACTOR.match(value) else None
