"""The `[app]` settings the webhooks read, validated apart from load.py's other fields.

- `github_repository = "owner/name"`: the repository whose GitHub webhooks may release slots
  (a payload's `repository.full_name` must be this one; default none: GitHub webhooks release
  nothing);
- `auto_release_stop = true|false`: whether a release made by a webhook also stops the slot's
  services, as `invoke release --stop` does (default false: the claim is freed, the release
  keeps running until the next deploy).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from staging_ops.errors import BadInput

# GitHub's own rules: owner names are letters, digits and single hyphens; repository names
# letters, digits, '.', '_' and '-' (never "." or "..").
GITHUB_REPOSITORY = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$"
)


def webhook_settings(raw: dict[str, Any], fail: Callable[[str, str], BadInput]) -> dict[str, Any]:
    """App(...) keyword arguments from `[app]`; `fail(field, problem)` builds the error that
    names the file and the field."""
    settings: dict[str, Any] = {}
    repository = raw.get("github_repository")
    if repository is not None:
        if not isinstance(repository, str) or not GITHUB_REPOSITORY.match(repository):
            raise fail("github_repository", 'must be a GitHub repository like "owner/name"')
        settings["github_repository"] = repository
    stop = raw.get("auto_release_stop", False)
    if not isinstance(stop, bool):
        raise fail("auto_release_stop", "must be true or false")
    settings["auto_release_stop"] = stop
    return settings
