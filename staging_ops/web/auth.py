"""Admin JWTs for the Staging API.

A token is accepted when it is HS256-signed with STAGING_API_JWT_SECRET, carries `exp` (and has
not expired; 30 s leeway for clock skew), and says the bearer is an admin in one of the ways
the Campaign UI's tokens do: `"admin": true`, `"role": "admin"`, or `"admin"` in `"roles"`.
The subject (`sub`, else `email`) is recorded as the channel of every change (`api:<sub>`).
"""

from __future__ import annotations

import os
import time
from typing import Any

import jwt

from staging_ops.errors import BadInput
from staging_ops.jsondoc import JSONObject

ENV_SECRET = "STAGING_API_JWT_SECRET"  # noqa: S105 - the variable's name, not a secret
ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
# Tokens already verified, by (token, secret): a dashboard or script sends the same token with
# every request, and its signature cannot change. Only `exp` is checked again each time.
MAX_VERIFIED = 1024
_verified: dict[tuple[str, str], tuple[JSONObject, int]] = {}  # -> (claims, exp)


class AuthError(Exception):
    """The request is not authorised; `status` is 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def secret_from_env(env: dict[str, str] | None = None) -> str:
    """The signing secret, or BadInput when it is missing or too short to be safe."""
    secret = (os.environ if env is None else env).get(ENV_SECRET, "")
    if not secret:
        raise BadInput(f"{ENV_SECRET} is not set: the Staging API refuses to run without it")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise BadInput(f"{ENV_SECRET} must be at least {MIN_SECRET_BYTES} bytes long")
    return secret


def is_admin(claims: JSONObject) -> bool:
    roles = claims.get("roles")
    return (
        claims.get("admin") is True
        or claims.get("role") == "admin"
        or (isinstance(roles, list) and "admin" in roles)
    )


def verify(authorization: str | None, secret: str) -> JSONObject:
    """The claims of an admin bearer token, or AuthError. The claims are shared: read only."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "missing bearer token (Authorization: Bearer <admin JWT>)")
    key = (token, secret)
    known = _verified.get(key)
    if known is None:
        claims = _decode(token, secret)
        if len(_verified) >= MAX_VERIFIED:
            _verified.clear()
        # PyJWT accepted `exp` as int(exp) (a float or a numeric string too): compare the same.
        _verified[key] = (claims, int(claims["exp"]))
        return claims
    claims, exp = known
    if exp + LEEWAY_SECONDS <= time.time():  # PyJWT's own rule, with its leeway
        _verified.pop(key, None)
        raise AuthError(401, "token expired")
    return claims


def _decode(token: str, secret: str) -> JSONObject:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp"]},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "token expired") from None
    except jwt.MissingRequiredClaimError:
        raise AuthError(401, "token has no exp claim") from None
    except jwt.InvalidTokenError:
        raise AuthError(401, "invalid token") from None
    if not is_admin(claims):
        raise AuthError(403, "admin token required")
    return claims


def subject(claims: JSONObject) -> str:
    return str(claims.get("sub") or claims.get("email") or "admin")


def mint_token(
    secret: str, subject: str, ttl_seconds: int = 3600, *, admin: bool = True, **extra: Any
) -> str:
    """An HS256 token for `subject` valid `ttl_seconds` (for operators, tests and benches)."""
    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + ttl_seconds, **extra}
    if admin:
        claims["admin"] = True
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
