"""Frozen values for what git wants (DesiredState) and what the registry has (ActualState).

Versions are strings everywhere: the sqlite store returns ints, REST returns strings (DESIGN §6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.endpoints import Endpoint
from reconciler.policy import Gates

PRODUCTION = "Production"
STAGING = "Staging"
ARCHIVED = "Archived"
NONE_STAGE = "None"
READY = "READY"

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


@dataclass(frozen=True)
class DesiredState:
    environments: Mapping[str, Environment]
    pins: tuple[Pin, ...]

    def environments_by_rank(self) -> list[Environment]:
        return sorted(self.environments.values(), key=lambda env: env.rank)


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: str
    stage: str = NONE_STAGE
    status: str = READY
    run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    created: int | None = None  # milliseconds since the epoch, as MLflow keeps it
    creator: str | None = None
    # MLflow's last_updated_timestamp (ms): a stage transition sets it, so of two versions in
    # one stage the later one is the one moved in last (what `import` pins).
    updated: int | None = None


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    versions: Mapping[str, ModelVersion] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def in_stage(self, stage: str) -> list[str]:
        """The versions currently in `stage`, lowest first."""
        return sorted((v.version for v in self.versions.values() if v.stage == stage), key=int)


@dataclass(frozen=True)
class ActualState:
    """What the registry holds.

    `models` maps a name to its versions and aliases. Versions are complete for the models the
    caller asked about; other models may carry only their latest version per stage (enough to see
    that they hold a managed stage, which is all the plan asks of them).
    """

    models: Mapping[str, RegisteredModel] = field(default_factory=dict)
