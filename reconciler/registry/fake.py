"""An in-memory registry with MLflow's semantics, for unit tests and contract tests.

It implements the rules independently of the planner (not by reusing its simulation), so
"applying the plan to the fake reaches the desired state" is a real check. The contract tests run
the same assertions against a real `mlflow server` to keep the two honest.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.errors import CopyStopped, RegistryError
from reconciler.pins.values import WorkspaceSetting
from reconciler.registry.artifacts import ArtifactFile, Artifacts, content_digest
from reconciler.registry.lineage import (
    CHECKED,
    RUN_STATUS,
    CopyRun,
    Lineage,
    run_tags,
    sort_runs,
)
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


class UploadInterrupted(Exception):
    """What a test makes a fake upload die of: like a SIGKILL, it leaves the run as it was (an
    unfinished run holding some of the files) and cleans nothing up."""


@dataclass
class FakeRun:
    """A run of the copy experiment: its tags, its files (path → bytes), its status."""

    run_id: str
    tags: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)
    status: str = "RUNNING"  # FINISHED once checked, FAILED when discarded
    deleted: bool = False


class FakeRegistry:
    def __init__(self, name: str = "fake") -> None:
        self.name = name
        # A version's model artifacts (path → bytes); a copy's are its run's (the same dict, as
        # MLflow's version points at the run's files: overwriting one overwrites the other).
        self.artifacts: dict[tuple[str, str], dict[str, bytes]] = {}
        self.copy_runs: dict[str, FakeRun] = {}
        # Test hooks for copies: die after this many files of an upload, touch the uploaded
        # files before the check (someone overwriting one), and the status a new copy version
        # has when created (MLflow may answer PENDING_REGISTRATION) with the number of
        # read_versions it takes to turn READY.
        self.interrupt_upload_after: int | None = None
        self.after_upload: Callable[[dict[str, bytes]], None] | None = None
        self.copy_status = READY
        self.pending_reads: dict[tuple[str, str], int] = {}
        self.uploads = 0  # files uploaded by register_copy, for tests counting transfers
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

    def use_workspace(self, setting: WorkspaceSetting | None) -> Workspace:
        own = setting is not None and setting.environment_own  # as the real adapter
        environ = None if own else os.environ.get(ENV_VARIABLE)
        self.workspace = resolve(setting, environ, self.workspaces_enabled, "the fake registry")
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
        files: Mapping[str, bytes] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """A new version; `files` are its model artifacts (relative path → content)."""
        self.create_model(name)
        model = self._models[name]
        version = str(len(model.versions) + 1)
        model.versions[version] = ModelVersion(
            name, version, stage, status, run_id, dict(tags or {}), created=created,
            creator=creator, updated=self._tick(), model_id=model_id,
        )  # fmt: skip
        self.artifacts[(name, version)] = dict(files or {})
        return version

    def delete_version(self, model: str, version: str) -> None:
        """A version deleted by hand (a dev registry pruning old versions)."""
        del self._models[model].versions[version]
        self.artifacts.pop((model, version), None)

    def overwrite_file(self, model: str, version: str, path: str, content: bytes) -> None:
        """Someone replacing or adding a file in a version's artifacts (by hand, in the store)."""
        self.artifacts[(model, version)][path] = content

    def remove_file(self, model: str, version: str, path: str) -> None:
        del self.artifacts[(model, version)][path]

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
        if found is None:
            return {}
        for (name, version), left in list(self.pending_reads.items()):
            if name == model:  # MLflow finishing a registration in the background
                self.pending_reads[(name, version)] = left - 1
                if left <= 1:
                    del self.pending_reads[(name, version)]
                    found.versions[version] = replace(found.versions[version], status=READY)
        return dict(found.versions)

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

    # -- copying a version between registries: the rules of the MLflow adapter --

    def describe(self) -> str:
        return f"fake://{self.name}"

    def version_artifacts(self, model: str, version: str) -> Artifacts:
        self._version_map(model, version)
        files = self.artifacts.get((model, version), {})
        return Artifacts(tuple(ArtifactFile(path, len(data)) for path, data in files.items()))

    def download_version(self, model: str, version: str, dest: Path) -> Artifacts:
        self._version_map(model, version)
        _write(self.artifacts.get((model, version), {}), dest)
        return Artifacts.of_folder(dest)

    def register_copy(
        self, model: str, files: Path, lineage: Lineage, stop: threading.Event | None = None
    ) -> ModelVersion:
        listed = [
            CopyRun(run.run_id, run.tags, run.status == "FINISHED")
            for run in self.copy_runs.values()
            if not run.deleted
        ]
        keep, discard = sort_runs(listed, lineage, model)
        for old in discard:
            self.copy_runs[old.run_id].status = "FAILED"
            self.copy_runs[old.run_id].deleted = True
        if keep is not None:
            run = self.copy_runs[keep.run_id]
            self._check(run, lineage)  # checked once; checked again before it is registered
        else:
            run = self._upload(files, lineage, model, stop)
            self._check(run, lineage)
            run.tags[RUN_STATUS] = CHECKED
            run.status = "FINISHED"
        # One write: the version exists with its lineage tags, or not at all.
        self.create_model(model)
        self.writes.append(("register_copy", model, lineage.model, lineage.version))
        version = self.create_version(
            model, status=self.copy_status, run_id=run.run_id, tags=lineage.tags()
        )
        self.artifacts[(model, version)] = run.files
        if self.copy_status == "PENDING_REGISTRATION":
            self.pending_reads[(model, version)] = 1  # the adapter waits: so does the fake
            self.read_versions(model)
        created = self._models[model].versions[version]
        if created.status != READY:
            raise RegistryError(f"{model} v{version} in {self.describe()}: {created.status}")
        return created

    def _upload(
        self, folder: Path, lineage: Lineage, model: str, stop: threading.Event | None = None
    ) -> FakeRun:
        run = FakeRun(f"copy-{len(self.copy_runs) + 1}", run_tags(lineage, model))
        self.copy_runs[run.run_id] = run
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if stop is not None and stop.is_set():  # as the adapter: the run deleted at once
                run.status, run.deleted = "FAILED", True
                raise CopyStopped(f"stopped while uploading the copy of {lineage.describe()}")
            if (
                self.interrupt_upload_after is not None
                and self.uploads >= self.interrupt_upload_after
            ):
                raise UploadInterrupted(f"upload of {lineage.describe()} interrupted")
            run.files[path.relative_to(folder).as_posix()] = path.read_bytes()
            self.uploads += 1
        if self.after_upload is not None:
            self.after_upload(run.files)
        return run

    def _check(self, run: FakeRun, lineage: Lineage) -> None:
        with tempfile.TemporaryDirectory(prefix="fake-copy-") as back:
            _write(run.files, Path(back))
            found = content_digest(Path(back))
        if found != lineage.digest:
            run.status, run.deleted = "FAILED", True
            raise RegistryError(
                f"the copy of {lineage.describe()} in {self.describe()} does not match: "
                f"uploaded {found}, expected {lineage.digest}; not registered"
            )

    def _version_map(self, model: str, version: str) -> dict[str, ModelVersion]:
        if model not in self._models:
            raise RegistryError(f"registered model {model!r} not found")
        versions = self._models[model].versions
        if version not in versions:
            raise RegistryError(f"{model} v{version} not found")
        return versions


def _write(files: Mapping[str, bytes], dest: Path) -> None:
    for path, data in files.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
