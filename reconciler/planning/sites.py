"""Which registry each environment lives in: environments grouped into sites, one per registry
(and workspace). Pure: from the desired state alone, `${VAR}`s unread.

An environment without `registry:` lives in the command's registry (--tracking-uri /
MLFLOW_TRACKING_URI) and the repository's workspace. One with `registry:` lives where that block
says; a block with only `workspace:` is the command's registry in another workspace. Environments
whose blocks say the same thing share a site: one connection, one read, one lease per model.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.pins.registry_settings import RegistrySetting
from reconciler.pins.values import DesiredState, Environment, WorkspaceSetting

# The command's own registry, as a site key's first part.
COMMAND = "command"


@dataclass(frozen=True)
class Site:
    """One registry (in one workspace) and the environments whose models live there. `setting`
    is None for the command's registry; it has a server of its own when it names a
    `tracking_uri`."""

    key: tuple[str | None, ...]
    environments: tuple[str, ...]
    setting: RegistrySetting | None = None
    workspace: WorkspaceSetting | None = None

    @property
    def own_server(self) -> bool:
        return self.setting is not None and self.setting.own_server

    def holds(self, environment: str) -> bool:
        return environment in self.environments


def sites(desired: DesiredState) -> tuple[Site, ...]:
    """Every site of the repository, the command's first (even with no environment in it:
    commands that read no pins use it), then by first environment name."""
    grouped: dict[tuple[str | None, ...], list[Environment]] = {}
    for env in sorted(desired.environments.values(), key=lambda e: e.name):
        grouped.setdefault(site_key(env, desired.workspace), []).append(env)
    command = site_key(None, desired.workspace)
    grouped.setdefault(command, [])
    ordered = sorted(grouped.items(), key=lambda item: (item[0] != command, _first(item[1])))
    return tuple(
        Site(
            key,
            tuple(env.name for env in envs),
            _setting(envs),
            workspace_of(envs[0] if envs else None, desired.workspace),
        )
        for key, envs in ordered
    )


def site_key(env: Environment | None, default: WorkspaceSetting | None) -> tuple[str | None, ...]:
    setting = env.registry if env is not None else None
    workspace = workspace_of(env, default)
    name = workspace.name if workspace is not None else None
    if setting is None or not setting.own_server:
        return (COMMAND, name)
    return (
        setting.tracking_uri,
        setting.username,
        setting.password,
        setting.token,
        name,
    )


def workspace_of(
    env: Environment | None, default: WorkspaceSetting | None
) -> WorkspaceSetting | None:
    """The workspace an environment works in: its `registry.workspace`, else the repository's."""
    setting = env.registry if env is not None else None
    if setting is not None and setting.workspace is not None:
        return WorkspaceSetting(
            setting.workspace, setting.file, setting.line_of("workspace"), environment_own=True
        )
    if setting is not None and setting.own_server:
        return None  # another server: the repository's workspace is the command's server's
    return default


def _setting(envs: list[Environment]) -> RegistrySetting | None:
    return next((env.registry for env in envs if env.registry is not None), None)


def _first(envs: list[Environment]) -> str:
    return envs[0].name if envs else ""
