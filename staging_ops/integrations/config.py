"""Which integrations are on, from the environment: a token turns one on, its base URL may be
moved (tests point it at a local stand-in). A token is kept out of every repr and message."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

GITHUB_TOKEN_ENV = "STAGING_GITHUB_TOKEN"  # noqa: S105 - the variable's name
GITHUB_URL_ENV = "STAGING_GITHUB_API_URL"
LINEAR_KEY_ENV = "STAGING_LINEAR_API_KEY"
LINEAR_URL_ENV = "STAGING_LINEAR_API_URL"
DASHBOARD_URL_ENV = "STAGING_DASHBOARD_URL"
GITHUB_API = "https://api.github.com"
LINEAR_API = "https://api.linear.app/graphql"
TARGETS = ("github", "linear")


@dataclass(frozen=True)
class Service:
    """One service: its base URL and credential (never shown)."""

    url: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    github: Service | None = None
    linear: Service | None = None
    dashboard_url: str | None = None

    @property
    def targets(self) -> list[str]:
        return [name for name in TARGETS if getattr(self, name) is not None]

    def service(self, target: str) -> Service | None:
        return getattr(self, target) if target in TARGETS else None


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env

    def service(token_env: str, url_env: str, default: str) -> Service | None:
        token = env.get(token_env, "").strip()
        if not token:
            return None
        return Service((env.get(url_env) or default).strip().rstrip("/"), token)

    return Settings(
        github=service(GITHUB_TOKEN_ENV, GITHUB_URL_ENV, GITHUB_API),
        linear=service(LINEAR_KEY_ENV, LINEAR_URL_ENV, LINEAR_API),
        dashboard_url=env.get(DASHBOARD_URL_ENV) or None,
    )


def off_reason(target: str) -> str:
    return f"{GITHUB_TOKEN_ENV if target == 'github' else LINEAR_KEY_ENV} is not set"
