"""Frozen values for what the registry has (ActualState): models, versions, aliases, tags.

Versions are strings everywhere: the sqlite store returns ints, REST returns strings (DESIGN §6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ARCHIVED = "Archived"
NONE_STAGE = "None"
READY = "READY"


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
    # The MLflow 3 LoggedModel it was registered from (its source is `models:/<model_id>`):
    # its metrics, not the run's, are what gates read.
    model_id: str | None = None


@dataclass(frozen=True)
class Metric:
    """One value a LoggedModel holds for a metric. It keeps every value logged (each step, each
    dataset), not only the last, so the reader picks."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0  # ms since the epoch
    dataset: str | None = None  # the dataset's name; None when logged without one


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
    # Names asked for that are MLflow prompts (the Prompt Registry keeps them as registered
    # models that every model search leaves out): reconciler does not manage them, and says so.
    prompts: Mapping[str, RegisteredModel] = field(default_factory=dict)
