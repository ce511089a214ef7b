"""The MLflow side of copying a version between registries (issue 17), mixed into MlflowRegistry.

It imports mlflow (the second module allowed to, tests/unit/test_layers.py): the copy needs
MLflow's artifact repositories, and the adapter module would grow past 500 lines with it. Every
MLflow call runs inside the adapter's `_translated_errors`, which also chooses the registry's
credentials. Artifacts go through MLflow's artifact repositories with THIS registry's tracking
URI, so a proxied `mlflow-artifacts:` store is reached through its own server.

Measured on MLflow 3.17.2 (design notes, "Issue 17"): `get_model_version_download_uri` answers
the concrete location for every kind of source (a run's artifacts, an MLflow 3 LoggedModel's
`models:/<id>`); `create_model_version` with tags is one request and the version is READY at once
on the OSS server (still waited for, bounded, should a plugin store answer PENDING).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from reconciler.errors import CopyStopped, RegistryError
from reconciler.redact import redact_uri
from reconciler.registry.artifacts import ArtifactFile, Artifacts, content_digest
from reconciler.registry.lineage import (
    CHECKED,
    COPY_EXPERIMENT,
    RUN_STATUS,
    SOURCE_VERSION,
    CopyRun,
    Lineage,
    run_tags,
    sort_runs,
)
from reconciler.registry.mlflow_reading import bind, pages
from reconciler.registry.values import ModelVersion

GONE = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
RUNS_PAGE = 1000
READY_TIMEOUT = 60.0  # seconds a new copy may stay PENDING_REGISTRATION before it is an error
MODEL_FOLDER = "model"  # where a copy run keeps the version's files


class MlflowCopying:
    """describe, version_artifacts, download_version and register_copy for MlflowRegistry."""

    if TYPE_CHECKING:  # provided by MlflowRegistry

        def _client(self) -> Any: ...
        def _writer(self) -> Any: ...
        def _resolved_uri(self) -> str: ...
        def _translated_errors(self, action: str) -> AbstractContextManager[None]: ...

    def describe(self) -> str:
        """The registry's identity in lineage tags and outputs: its URI without the userinfo
        (not even masked: a copy's lineage must not change with the credentials used to make
        it), its scheme and host in lower case, without a default port or a trailing slash
        (`HTTP://Host:80/` is `http://host`): one server spelled two ways must find its copies."""
        return identity(self._resolved_uri())

    def version_artifacts(self, model: str, version: str) -> Artifacts:
        with self._translated_errors(f"list the artifacts of {model} v{version}"):
            repo = self._repository(self._version_location(model, version))
            return Artifacts(tuple(_walk(repo, None)))

    def download_version(self, model: str, version: str, dest: Path) -> Artifacts:
        with self._translated_errors(f"download the artifacts of {model} v{version}"):
            repo = self._repository(self._version_location(model, version))
            repo.download_artifacts("", dst_path=str(dest))
        return Artifacts.of_folder(dest)

    def register_copy(
        self, model: str, files: Path, lineage: Lineage, stop: threading.Event | None = None
    ) -> ModelVersion:
        what = f"copy {lineage.describe()} into {model}"
        with self._translated_errors(what):
            experiment = self._copy_experiment()
            keep, discard = sort_runs(self._copy_runs(experiment, lineage), lineage, model)
            for old in discard:
                # FAILED first: should this be killed before the delete, the run is still no
                # candidate (only a FINISHED, checked run is).
                self._client().set_terminated(old.run_id, "FAILED")
                self._client().delete_run(old.run_id)
            if keep is not None:
                run_id, artifact_uri = (
                    keep.run_id,
                    self._client().get_run(keep.run_id).info.artifact_uri,
                )
            else:
                run_id, artifact_uri = self._upload(experiment, files, lineage, model, stop)
            source = f"{artifact_uri}/{MODEL_FOLDER}"
            if keep is None:  # the check downloads it all again: not after a stop
                self._stop_here(stop, run_id, lineage, model)
            self._check(run_id, source, lineage, model)
            if keep is None:
                self._client().set_tag(run_id, RUN_STATUS, CHECKED)
                self._client().set_terminated(run_id, "FINISHED")
            return self._create_version(model, source, run_id, lineage)

    # -- the steps, each called inside _translated_errors --

    def _version_location(self, model: str, version: str) -> str:
        """The concrete URI of a version's files, as the server resolves its `source` (a run's
        artifact folder, a LoggedModel's artifact location for `models:/<id>`)."""
        return str(self._writer().get_model_version_download_uri(model, version))

    def _repository(self, uri: str) -> Any:
        """MLflow's artifact repository for `uri`, reached with this registry's URI. Never for
        a `models:/` URI: MLflow's models repository ignores the URI passed and reads the
        process's default registry (measured on 3.17.2: it created ./mlflow.db). The server
        resolves `models:/` sources itself; `runs:/` ones come back as they are and MLflow's
        runs repository honours the URI passed."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        if uri.startswith("models:"):
            raise RegistryError(
                f"{self.describe()} resolves a version's artifacts to {redact_uri(uri)}, "
                "which cannot be read with this registry's URI"
            )
        tracking = self._resolved_uri()
        return get_artifact_repository(uri, tracking_uri=tracking, registry_uri=tracking)

    def _copy_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        client = self._client()
        found = client.get_experiment_by_name(COPY_EXPERIMENT)
        if found is not None:
            if found.lifecycle_stage == "deleted":  # someone deleted it: bring it back
                client.restore_experiment(found.experiment_id)
            return str(found.experiment_id)
        try:
            return str(client.create_experiment(COPY_EXPERIMENT))
        except MlflowException as error:  # a racing copy made it first
            if error.error_code != EXISTS:
                raise
            return str(client.get_experiment_by_name(COPY_EXPERIMENT).experiment_id)

    def _copy_runs(self, experiment: str, lineage: Lineage) -> list[CopyRun]:
        """The live runs of earlier copies of this source version number; the registry and
        model are compared here, not in the filter (names may hold quotes the parser mangles)."""
        search = bind(
            self._client().search_runs,
            experiment_ids=[experiment],
            filter_string=f"tags.`{SOURCE_VERSION}` = '{int(lineage.version)}'",
            order_by=["attributes.start_time ASC"],
        )
        return [
            CopyRun(run.info.run_id, dict(run.data.tags), run.info.status == "FINISHED")
            for run in pages(search, RUNS_PAGE)
        ]

    def _upload(
        self,
        experiment: str,
        files: Path,
        lineage: Lineage,
        model: str,
        stop: threading.Event | None,
    ) -> tuple[str, str]:
        """File by file (as MLflow's own log_artifacts does for HTTP and S3 stores), so that a
        signal stops the upload after the file in flight, not after the whole model (a
        cancelled CI job is killed a few seconds after its SIGTERM)."""
        run = self._client().create_run(
            experiment,
            tags=run_tags(lineage, model),
            run_name=f"copy of {lineage.model} v{lineage.version} into {model}"[:250],
        )
        run_id = str(run.info.run_id)
        repository = self._repository(f"{run.info.artifact_uri}/{MODEL_FOLDER}")
        for path in sorted(p for p in files.rglob("*") if p.is_file()):
            self._stop_here(stop, run_id, lineage, model)
            folder = path.parent.relative_to(files).as_posix()
            repository.log_artifact(str(path), None if folder == "." else folder)
        return run_id, str(run.info.artifact_uri)

    def _stop_here(
        self, stop: threading.Event | None, run_id: str, lineage: Lineage, model: str
    ) -> None:
        """A signal arrived: the unfinished run is deleted now (FAILED first, as a discarded run
        is), so nothing half-made waits for the next copy to clean it up."""
        if stop is None or not stop.is_set():
            return
        self._client().set_terminated(run_id, "FAILED")
        self._client().delete_run(run_id)
        raise CopyStopped(
            f"stopped while uploading the copy of {lineage.describe()} into {model}; the "
            "unfinished upload was deleted"
        )

    def _check(self, run_id: str, source: str, lineage: Lineage, model: str) -> None:
        """Download what the registry holds back and compare the content digest: the check
        before any version exists. A mismatch discards the run."""
        with tempfile.TemporaryDirectory(prefix="reconciler-check-") as folder:
            self._repository(source).download_artifacts("", dst_path=folder)
            found = content_digest(Path(folder))
        if found != lineage.digest:
            self._client().set_terminated(run_id, "FAILED")
            self._client().delete_run(run_id)
            raise RegistryError(
                f"the copy of {lineage.describe()} into {model} at {self.describe()} does not "
                f"match: uploaded {found}, expected {lineage.digest}; not registered"
            )

    def _create_version(
        self, model: str, source: str, run_id: str, lineage: Lineage
    ) -> ModelVersion:
        """One request: the version exists with its lineage tags, or not at all."""
        from mlflow.exceptions import MlflowException

        from reconciler.registry.mlflow_registry import _version

        writer = self._writer()

        def create() -> Any:
            return writer.create_model_version(
                model, source, run_id, tags=lineage.tags(), await_creation_for=0
            )

        try:
            created = create()
        except MlflowException as error:
            if error.error_code != GONE:
                raise
            try:
                writer.create_registered_model(model)
            except MlflowException as race:
                if race.error_code != EXISTS:
                    raise
            created = create()
        deadline = time.monotonic() + READY_TIMEOUT
        while created.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
            time.sleep(0.5)
            created = writer.get_model_version(model, str(created.version))
        version = _version(created)
        if version.status != "READY":
            raise RegistryError(
                f"{model} v{version.version} at {self.describe()} is {version.status} "
                f"(the copy of {lineage.describe()}); it is not served"
            )
        return version


def _walk(repo: Any, path: str | None) -> Iterator[ArtifactFile]:
    """Every file under `path` of an artifact repository, recursively, with its size."""
    for info in repo.list_artifacts(path):
        if info.is_dir:
            yield from _walk(repo, info.path)
        else:
            yield ArtifactFile(info.path, int(info.file_size or 0))


def identity(uri: str) -> str:
    """A registry URI as its identity (see MlflowCopying.describe)."""
    scheme, found, rest = uri.partition("://")
    if found and scheme.lower() in ("http", "https") and "@" in rest:
        # Userinfo runs to the last `@`: a password may hold `/`, `?` or `#`, which a URL parser
        # takes for the path, query or fragment (and would keep the password in the identity).
        uri = f"{scheme}://{rest.rpartition('@')[2]}"
    parts = urlsplit(uri)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        host = parts.netloc.rpartition("@")[2].lower()
        default = ":80" if parts.scheme.lower() == "http" else ":443"
        if host.endswith(default):
            host = host[: -len(default)]
        uri = urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=host))
    elif "@" in parts.netloc:  # rebuilt only then: urlunsplit drops sqlite:////'s empty host
        uri = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return redact_uri(uri).rstrip("/")
