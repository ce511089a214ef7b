"""Which workspace of the registry a command works in.

MLflow servers started with `--enable-workspaces` (3.10 and later) keep models apart per
workspace: two workspaces may each hold a `churn`. The client picks one with MLFLOW_WORKSPACE (a
header on every request), and a server given none silently uses `default`. A promotion
repository says its workspace in environments/_defaults.yaml; this module decides, from that
setting, MLFLOW_WORKSPACE and what the server supports, which one a command uses (or refuses).
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.errors import InvalidInput, Problem, UsageError
from reconciler.pins.values import WorkspaceSetting

DEFAULT = "default"  # the server's own, for requests that name none
ENV_VARIABLE = "MLFLOW_WORKSPACE"
SETTINGS = "settings"


@dataclass(frozen=True)
class Workspace:
    """`name`: None when the registry has no workspaces. `chosen_by`: SETTINGS, ENV_VARIABLE, or
    None when nothing chose one and the server falls back to its default."""

    name: str | None = None
    chosen_by: str | None = None

    def describe(self) -> str:
        """As plans and status show it: `team-a`, or `default (none chosen)`."""
        if self.name is None:
            return "-"
        return self.name if self.chosen_by else f"{self.name} (none chosen)"


NO_WORKSPACES = Workspace()


def check_agreement(setting: WorkspaceSetting | None, environ_value: str | None) -> None:
    """The repository's setting and MLFLOW_WORKSPACE name one workspace, or the command stops
    before it asks the registry anything."""
    env = (environ_value or "").strip() or None
    if setting is not None and env is not None and env != setting.name:
        raise InvalidInput(
            [
                Problem(
                    setting.file,
                    setting.line,
                    "workspace",
                    f"this repository works in workspace {setting.name!r}, but "
                    f"{ENV_VARIABLE} is {env!r}: unset {ENV_VARIABLE} or make the two agree "
                    "(nothing was read or changed)",
                )
            ]
        )


def resolve(
    setting: WorkspaceSetting | None,
    environ_value: str | None,
    server_has_workspaces: bool,
    registry: str,
) -> Workspace:
    """The workspace to use, or a refusal before anything is written: the repository's setting
    and MLFLOW_WORKSPACE disagree, or a workspace is chosen on a registry that has none."""
    check_agreement(setting, environ_value)
    env = (environ_value or "").strip() or None
    name = setting.name if setting is not None else env
    if not server_has_workspaces:
        if name is not None:
            said = f"{setting.file}" if setting is not None else ENV_VARIABLE
            raise UsageError(
                f"workspace {name!r} ({said}) cannot be used: the registry at {registry} has "
                "no workspaces (an MLflow server started with --enable-workspaces has them)"
            )
        return NO_WORKSPACES
    if name is None:
        return Workspace(DEFAULT, None)
    return Workspace(name, SETTINGS if setting is not None else ENV_VARIABLE)


def owner_in(repository: str, workspace: Workspace) -> str:
    """This repository's identity as ownership records it: in a workspace other than the
    default, the workspace belongs to it, so a same-named model in another workspace (moved
    there when its workspace was deleted, say) is never taken for ours. Records from before
    workspaces (the default workspace then) stay ours."""
    if workspace.name in (None, DEFAULT):
        return repository
    return f"{repository} workspace:{workspace.name}"
