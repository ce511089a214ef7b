"""The registry port: what the reconciler needs from a model registry, and nothing more."""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from reconciler.pins.values import WorkspaceSetting
from reconciler.registry.artifacts import Artifacts
from reconciler.registry.lineage import Lineage
from reconciler.registry.values import ActualState, Metric, ModelVersion, RegisteredModel
from reconciler.registry.workspaces import Workspace


class Registry(Protocol):
    """Implemented by `MlflowRegistry` (real) and `FakeRegistry` (tests). Versions are strings."""

    # What the registry learnt about itself that the user should hear once per command (e.g. that
    # the server cannot archive atomically, so promotions take two steps); the CLI prints them.
    notices: list[str]

    def use_workspace(self, setting: WorkspaceSetting | None) -> Workspace:
        """Decide the workspace every later request goes to (workspaces.resolve: the setting,
        MLFLOW_WORKSPACE and whether the registry has workspaces) and use it. Called before any
        other read or write of a command that reads pins."""
        ...

    def read(self, models: Collection[str]) -> ActualState:
        """Every registered model with its aliases; all versions of `models`, and for every other
        model at least its latest version per stage. Names in `models` that are no registered
        model but an MLflow prompt come back in `prompts` (looked up only for names not found)."""
        ...

    def read_model(self, model: str) -> RegisteredModel | None:
        """One registered model with all its versions and aliases (None if it does not exist):
        the cheap re-read before each write and after a write of unknown outcome."""
        ...

    def read_versions(self, model: str) -> dict[str, ModelVersion]:
        """Every version of one model with its stage (empty when the model is gone or has
        none), in one request: the compare-and-set re-read before a stage change."""
        ...

    def run_metrics(self, run_id: str) -> dict[str, float] | None:
        """The latest value of each metric of a run; None when the run does not exist."""
        ...

    def logged_model_metrics(
        self, model_ids: Collection[str]
    ) -> dict[str, tuple[Metric, ...] | None]:
        """Every value each LoggedModel holds (each step and dataset, in the order logged);
        None for one that does not exist. Each model is read once per command."""
        ...

    def read_prompts(self, names: Collection[str] | None = None) -> dict[str, RegisteredModel]:
        """The MLflow prompts among `names` (all of them when None), with their aliases and
        latest version per stage: read only to say that reconciler leaves prompts alone."""
        ...

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        """Move a version to `stage`; with `archive_existing`, archive the stage's other versions
        in the same call. Never called with `archive_existing` towards Archived or None."""
        ...

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point `alias` at `version`, moving it from wherever it was."""
        ...

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove an alias (no error when it is already gone)."""
        ...

    def get_model_tag(self, model: str, key: str) -> str | None:
        """A registered model's tag; None when the tag or the model does not exist."""
        ...

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        """Set a registered model's tag; with `create_model`, register the model first if needed."""
        ...

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Set a model version's tag (audit records)."""
        ...

    def delete_model_tag(self, model: str, key: str) -> None:
        """Remove a registered model's tag (no error when it is already gone)."""
        ...

    # -- copying a version between registries (issue 17) --

    def describe(self) -> str:
        """The registry as outputs and lineage tags name it: its URI without credentials
        (redact_uri), e.g. `http://127.0.0.1:5000`; the fake: `fake://<name>`."""
        ...

    def version_artifacts(self, model: str, version: str) -> Artifacts:
        """The files of a version's model artifacts (its `source`), paths and sizes, listed
        without downloading (plan shows the size to transfer)."""
        ...

    def download_version(self, model: str, version: str, dest: Path) -> Artifacts:
        """Download the version's model artifacts into the empty folder `dest`."""
        ...

    def register_copy(
        self, model: str, files: Path, lineage: Lineage, stop: threading.Event | None = None
    ) -> ModelVersion:
        """Upload `files` into this registry and register them as a new version of `model`
        carrying `lineage.tags()`, READY: in a run of experiment `reconciler-copies`, checked
        against `lineage.digest` by downloading it back before the version is created (in one
        request, with its tags). Resumes a checked run of the same lineage without uploading
        again; deletes unfinished ones. Never returns a version that is not READY. `stop` set
        (a signal): raises CopyStopped before the next file, its unfinished run deleted."""
        ...
