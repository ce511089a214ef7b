"""Frozen values for what git wants: environments, pins, the desired state.

Versions are strings everywhere: the sqlite store returns ints, REST returns strings (DESIGN §6).
The registry's side (ActualState) is in `reconciler.registry.values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.pins.endpoints import Endpoint
from reconciler.pins.gates import Gates
from reconciler.pins.registry_settings import RegistrySetting

PRODUCTION = "Production"
STAGING = "Staging"

# Higher environments are applied first so Production is never left empty mid-apply, and a version
# pinned in two stage environments belongs to the highest one.
STAGE_RANK = {PRODUCTION: 0, STAGING: 1}
ALIAS_ONLY_RANK = 2
# The stage `staging` and `production` manage unless their settings say otherwise. After the
# stage → alias migration (`stage: null`) the stage is still shown, as unmanaged, under this name.
DEFAULT_STAGE = {"staging": STAGING, "production": PRODUCTION}


@dataclass(frozen=True, order=True)
class Environment:
    """How one `environments/<name>/` folder maps onto the registry."""

    name: str
    stage: str | None  # Staging | Production | None (alias only)
    alias: str | None = None
    requires: str | None = None  # promotion order: the environment a version must pass first
    gates: Gates | None = None
    prune: bool = False
    max_retire: int = 3
    settings_file: str | None = None  # where the settings came from, for messages
    serving: Endpoint | None = None  # where `verify` asks which version serves
    # Where its models live when not in the command's registry (`registry:` in its settings).
    registry: RegistrySetting | None = None

    @property
    def rank(self) -> tuple[int, str]:
        """Sort key: Production first, then Staging, then alias-only environments, by name."""
        return (STAGE_RANK.get(self.stage or "", ALIAS_ONLY_RANK), self.name)

    def target(self) -> str:
        """What the environment sets, as a person reads it: `Production`, `@champion`, or both."""
        parts = [self.stage] if self.stage else []
        if self.alias:
            parts.append(f"@{self.alias}")
        return " + ".join(parts)


def filterable_name(name: str) -> bool:
    """Whether MLflow's search filter parser can name `name`: no backslash, no control
    character (MLflow accepts both in model names, and they break `name IN (...)`)."""
    return "\\" not in name and all(c.isprintable() for c in name)


# Environments that need no settings file: their folder is the environment.
DEFAULT_ENVIRONMENTS = {
    "staging": Environment("staging", STAGING),
    "production": Environment("production", PRODUCTION),
}


@dataclass(frozen=True)
class Pin:
    """One pin file: `model` at `version` in `environment`."""

    environment: str
    model: str
    version: str
    file: str
    line: int = 1
    version_line: int = 1
    run_id: str | None = None
    run_id_line: int = 1
    note: str | None = None
    gates: Gates | None = None
    confidence: float | None = None
    serving: Endpoint | None = None  # replaces the environment's for this pin
    # `from: <environment>`: `version` is numbered in that environment's registry; apply copies
    # it into this one. None: the version is this environment's registry's own.
    source: str | None = None
    source_line: int = 1


@dataclass(frozen=True)
class WorkspaceSetting:
    """`workspace:` in the repository's defaults (environments/_defaults.yaml): the registry
    workspace every command of this repository works in, and where it was said."""

    name: str
    file: str
    line: int = 1
    # Said by one environment's own `registry:` block, not the repository's defaults: the
    # command's MLFLOW_WORKSPACE (which names the repository's workspace) does not judge it.
    environment_own: bool = False


@dataclass(frozen=True)
class DesiredState:
    environments: Mapping[str, Environment]
    pins: tuple[Pin, ...]
    workspace: WorkspaceSetting | None = None

    def environments_by_rank(self) -> list[Environment]:
        return sorted(self.environments.values(), key=lambda env: env.rank)

    def only(self, environments: Iterable[str]) -> DesiredState:
        """The part of it that lives in `environments` (one registry's share)."""
        kept = set(environments)
        return DesiredState(
            {name: env for name, env in self.environments.items() if name in kept},
            tuple(pin for pin in self.pins if pin.environment in kept),
            self.workspace,
        )
