"""The one place that knows where a slot lives on its droplet."""

from __future__ import annotations

from dataclasses import dataclass

from staging_ops.inventory import Host, Slot


@dataclass(frozen=True)
class SlotPaths:
    """A slot's paths on its droplet: `<base_dir>/<identifier>/` holds `releases/`, `shared/`,
    the `current` link and the deploy lock; the git mirror and venvs are shared by the host's
    slots."""

    host: Host
    slot: Slot

    @property
    def root(self) -> str:
        return self.slot.directory(self.host)

    @property
    def releases(self) -> str:
        return f"{self.root}/releases"

    @property
    def current(self) -> str:
        return f"{self.root}/current"

    @property
    def lock(self) -> str:
        return f"{self.root}/.deploy.lock"

    @property
    def mirror(self) -> str:
        return f"{self.host.base_dir}/repo.git"

    @property
    def venvs(self) -> str:
        return f"{self.host.base_dir}/venvs"

    @property
    def env_file(self) -> str:
        return f"{self.root}/shared/env"
