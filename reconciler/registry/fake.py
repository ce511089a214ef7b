"""An in-memory registry with MLflow's semantics, for unit tests and contract tests.

It implements the rules independently of the planner (not by reusing its simulation), so
"applying the plan to the fake reaches the desired state" is a real check. The contract tests run
the same assertions against a real `mlflow server` to keep the two honest.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from reconciler.errors import RegistryError
from reconciler.pins.values import WorkspaceSetting
from reconciler.registry.values import (
    ARCHIVED,
    NONE_STAGE,
    READY,
    ActualState,
    Metric,
    ModelVersion,
    RegisteredModel,
)
from reconciler.registry.workspaces import ENV_VARIABLE, Workspace, resolve

_STAGES = ("None", "Staging", "Production", "Archived")


@dataclass
class _Model:
    versions: dict[str, ModelVersion] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class FakeRegistry:
    def __init__(self, name: str = "registry") -> None:
        self.name = name
        self._models: dict[str, _Model] = {}
        self.writes: list[tuple[str, ...]] = []
        self.notices: list[str] = []
        self.metrics: dict[str, dict[str, float]] = {}  # run id → metrics
        self.logged_models: dict[str, list[Metric]] = {}  # LoggedModel id → every value logged
        self.prompts: dict[str, _Model] = {}  # kept apart, as MLflow's searches keep them
        self._clock = 0  # a logical last_updated_timestamp: every change ticks it
        # A server started with --enable-workspaces (the fake holds the chosen one's models).
        self.workspaces_enabled = False
        self.workspace: Workspace | None = None  # what the command chose

    def describe(self) -> str:
        return f"fake://{self.name}"

    def use_workspace(self, setting: WorkspaceSetting | None) -> Workspace:
        self.workspace = resolve(
            setting, os.environ.get(ENV_VARIABLE), self.workspaces_enabled, "the fake registry"
        )
        return self.workspace

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    # -- setting up a scenario (what a training pipeline or a person would do) --

    def create_model(self, name: str) -> None:
        self._models.setdefault(name, _Model())

    def create_version(
        self,
        name: str,
        stage: str = NONE_STAGE,
        status: str = READY,
        run_id: str | None = None,
        created: int | None = None,
        creator: str | None = None,
        model_id: str | None = None,
    ) -> str:
        self.create_model(name)
        model = self._models[name]
        version = str(len(model.versions) + 1)
        model.versions[version] = ModelVersion(
            name, version, stage, status, run_id, created=created, creator=creator,
            updated=self._tick(), model_id=model_id,
        )  # fmt: skip
        return version

    def create_logged_model(self) -> str:
        """An MLflow 3 LoggedModel (what `log_model(name=...)` makes); its id."""
        model_id = f"m-{len(self.logged_models) + 1:032x}"
        self.logged_models[model_id] = []
        return model_id

    def log_model_metric(
        self, model_id: str, key: str, value: float, *, dataset: str | None = None, step: int = 0
    ) -> None:
        """`log_metric(..., model_id=..., dataset=...)`: one more value, later than any before."""
        self.logged_models[model_id].append(Metric(key, value, step, self._tick(), dataset))

    def create_prompt(self, name: str, aliases: dict[str, str] | None = None) -> None:
        """An MLflow prompt (`genai.register_prompt`) with version 1 and these aliases."""
        self.prompts[name] = _Model(
            {"1": ModelVersion(name, "1", updated=self._tick())}, dict(aliases or {})
        )

    def force_stage(self, name: str, version: str, stage: str) -> None:
        """A hand edit with no archiving (the UI with the box unticked, or a lost race)."""
        old = self._models[name].versions[version]
        self._models[name].versions[version] = replace(old, stage=stage, updated=self._tick())

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        old = self._version_map(model, version)[version]
        self.writes.append(("set_version_tag", model, version, key))
        self._models[model].versions[version] = replace(old, tags={**old.tags, key: value})

    # -- the Registry port --

    def read(self, models: Collection[str]) -> ActualState:
        return ActualState(
            {
                name: RegisteredModel(
                    name, dict(model.versions), dict(model.aliases), dict(model.tags)
                )
                for name, model in self._models.items()
            },
            self.read_prompts([name for name in models if name not in self._models]),
        )

    def read_prompts(self, names: Collection[str] | None = None) -> dict[str, RegisteredModel]:
        return {
            name: RegisteredModel(name, dict(prompt.versions), dict(prompt.aliases))
            for name, prompt in sorted(self.prompts.items())
            if names is None or name in names
        }

    def read_model(self, model: str) -> RegisteredModel | None:
        found = self._models.get(model)
        if found is None:
            return None
        return RegisteredModel(model, dict(found.versions), dict(found.aliases), dict(found.tags))

    def read_versions(self, model: str) -> dict[str, ModelVersion]:
        found = self._models.get(model)
        return dict(found.versions) if found is not None else {}

    def run_metrics(self, run_id: str) -> dict[str, float] | None:
        return self.metrics.get(run_id)

    def logged_model_metrics(
        self, model_ids: Collection[str]
    ) -> dict[str, tuple[Metric, ...] | None]:
        found = {model_id: self.logged_models.get(model_id) for model_id in model_ids}
        return {model_id: None if rows is None else tuple(rows) for model_id, rows in found.items()}

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        if stage not in _STAGES:
            raise RegistryError(f"invalid stage {stage!r}")
        if archive_existing and stage in (ARCHIVED, NONE_STAGE):
            # MLflow answers HTTP 500 here (DESIGN §6); the fake refuses just as loudly.
            raise RegistryError("archive_existing_versions towards Archived/None")
        versions = self._version_map(model, version)
        self.writes.append(("transition", model, version, stage, str(archive_existing)))
        if archive_existing:
            for other in list(versions.values()):
                if other.stage == stage and other.version != version:
                    self.force_stage(model, other.version, ARCHIVED)
        self.force_stage(model, version, stage)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._version_map(model, version)
        self.writes.append(("set_alias", model, alias, version))
        self._models[model].aliases[alias] = version

    def delete_alias(self, model: str, alias: str) -> None:
        if model in self._models:
            self.writes.append(("delete_alias", model, alias))
            self._models[model].aliases.pop(alias, None)

    def get_model_tag(self, model: str, key: str) -> str | None:
        found = self._models.get(model)
        return None if found is None else found.tags.get(key)

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        if model not in self._models:
            if not create_model:
                raise RegistryError(f"registered model {model!r} not found")
            self.create_model(model)
        self.writes.append(("set_model_tag", model, key))
        self._models[model].tags[key] = value

    def delete_model_tag(self, model: str, key: str) -> None:
        if model in self._models:
            self.writes.append(("delete_model_tag", model, key))
            self._models[model].tags.pop(key, None)

    def _version_map(self, model: str, version: str) -> dict[str, ModelVersion]:
        if model not in self._models:
            raise RegistryError(f"registered model {model!r} not found")
        versions = self._models[model].versions
        if version not in versions:
            raise RegistryError(f"{model} v{version} not found")
        return versions
