"""A real `mlflow server` on 127.0.0.1 for the whole session, and helpers to shape its registry."""

from __future__ import annotations

import os
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.postgres import (
    Postgres,
    PostgresFailed,
    PostgresUnavailable,
    start_postgres,
    stop_postgres,
)
from tests.support.proxy import RecordingProxy
from tests.support.server import ServerFailed, start_or_fail, start_server, stop_server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_or_fail(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield url
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def prod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second registry (issue 17: copies between registries) with its own sqlite backend and
    artifact root, its artifacts proxied: clients see `mlflow-artifacts:/` URIs and move files
    through this server (`mlflow_server`'s artifacts are a plain folder the client writes into).
    The later `--default-artifact-root` wins over start_server's (click keeps the last)."""
    workdir = tmp_path_factory.mktemp("mlflow-prod")
    url, process = start_or_fail(
        workdir,
        "--serve-artifacts",
        "--default-artifact-root", "mlflow-artifacts:/",
        "--artifacts-destination", str(workdir / "proxied"),
    )  # fmt: skip
    try:
        yield url
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL server for the session; each driver gets its own database on it."""
    try:
        server = start_postgres()
    except PostgresUnavailable as missing:
        if os.environ.get("CI") == "true":  # CI must run the lane; .ci/run installs PostgreSQL
            pytest.fail(f"{missing}; .ci/run should have installed it")
        pytest.skip(f"PostgreSQL lane skipped: {missing}")
    except PostgresFailed as failed:
        pytest.fail(str(failed))
    try:
        yield server
    finally:
        stop_postgres(server)


# SQLAlchemy's driver per URI scheme: `postgresql://` is psycopg v3 under SQLAlchemy 2.1, the URI
# most teams write; `postgresql+psycopg2://` is the older driver (DESIGN §6: they differ).
DRIVERS = {"psycopg2": "psycopg2", "psycopg3": ""}


@pytest.fixture(scope="session")
def postgres_servers(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """`mlflow server` per driver, each on its own database, started side by side: each takes
    ~26 s, mostly one core migrating a fresh database, then four workers importing MLflow."""
    for driver in DRIVERS:
        postgres.create_database(f"mlflow_{driver}")
    with ThreadPoolExecutor(len(DRIVERS)) as pool:
        futures = {
            driver: pool.submit(
                start_server,
                tmp_path_factory.mktemp(f"mlflow-{driver}"),
                backend=postgres.uri(f"mlflow_{driver}", scheme_driver),
                workers=4,  # as production runs it (DESIGN §6 measured the races with four)
            )
            for driver, scheme_driver in DRIVERS.items()
        }
    started: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    failures = []
    for driver, future in futures.items():
        try:
            started[driver] = future.result()
        except ServerFailed as failed:
            failures.append(f"{driver}: {failed}")
    try:
        if failures:
            pytest.fail("\n".join(failures))
        yield {driver: url for driver, (url, _process) in started.items()}
    finally:
        for _url, process in started.values():
            stop_server(process)


@pytest.fixture(scope="session")
def mlflow_on_psycopg2(postgres_servers: dict[str, str]) -> str:
    return postgres_servers["psycopg2"]


@pytest.fixture(scope="session")
def mlflow_on_psycopg3(postgres_servers: dict[str, str]) -> str:
    return postgres_servers["psycopg3"]


# Parametrize a test over every backend the lane covers, then ask `backend_url(request, param)`.
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("psycopg2", id="pg-psycopg2", marks=pytest.mark.postgres),
    pytest.param("psycopg3", id="pg-psycopg3", marks=pytest.mark.postgres),
]
POSTGRES_DRIVERS = [param for param in BACKENDS if param.values[0] != "sqlite"]


def backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    """The session's `mlflow server` on `backend`: "sqlite", "psycopg2" or "psycopg3"."""
    fixture = "mlflow_server" if backend == "sqlite" else f"mlflow_on_{backend}"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(params=BACKENDS)
def any_server(request: pytest.FixtureRequest) -> str:
    """`mlflow server` on sqlite, then on PostgreSQL with each driver."""
    return backend_url(request, request.param)


@pytest.fixture(params=POSTGRES_DRIVERS)
def pg_server(request: pytest.FixtureRequest) -> str:
    """`mlflow server` on PostgreSQL, once per driver."""
    return backend_url(request, request.param)


@pytest.fixture
def proxy(mlflow_server: str) -> Iterator[RecordingProxy]:
    recording = RecordingProxy(mlflow_server)
    try:
        yield recording
    finally:
        recording.close()


class Seeder:
    """Shapes the real registry the way a training pipeline or a person in the UI would."""

    def __init__(self, url: str) -> None:
        from mlflow import MlflowClient

        self.client: Any = MlflowClient(tracking_uri=url, registry_uri=url)
        self.suffix = uuid.uuid4().hex[:8]

    def name(self, base: str) -> str:
        """A model name unique to this test: tests share one server."""
        return f"{base}-{self.suffix}"

    def model(self, name: str, accuracies: list[float]) -> list[str]:
        """Register `name` with one version per accuracy, each from its own run."""
        self.client.create_registered_model(name)
        versions = []
        for accuracy in accuracies:
            run = self.client.create_run("0")
            self.client.log_metric(run.info.run_id, "accuracy", accuracy)
            self.client.set_terminated(run.info.run_id)
            mv = self.client.create_model_version(
                name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
            )
            versions.append(str(mv.version))
        return versions

    def logged_model_version(
        self, name: str, rows: list[tuple[str, float, str | None, int]], with_run: bool = True
    ) -> tuple[str, str]:
        """A version of `name` registered from a new MLflow 3 LoggedModel holding `rows` (key,
        value, dataset, step), as `log_model(name=...)` and `log_metric(model_id=..., dataset=...)`
        leave it; without `with_run`, the LoggedModel has no source run (the version has none
        either: metrics still need some run, made for them). Returns (version, model_id)."""
        from mlflow.entities import LoggedModelStatus

        if not self.client.search_registered_models(f"name = '{name}'"):
            self.client.create_registered_model(name)
        run = self.client.create_run("0")
        source_run = run.info.run_id if with_run else None
        logged = self.client.create_logged_model("0", name="model", source_run_id=source_run)
        self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        for key, value, dataset, step in rows:
            self.client.log_metric(
                run.info.run_id, key, value, step=step, model_id=logged.model_id,
                dataset_name=dataset, dataset_digest=f"d-{dataset}" if dataset else None,
            )  # fmt: skip
        self.client.set_terminated(run.info.run_id)
        version = self.client.create_model_version(
            name, source=f"models:/{logged.model_id}", run_id=source_run, model_id=logged.model_id
        )
        return str(version.version), str(logged.model_id)

    def prompt(self, name: str, aliases: dict[str, str]) -> None:
        """An MLflow prompt (Prompt Registry) with version 1 and these aliases."""
        self.client.register_prompt(name, "Hello {{name}}")
        for alias, version in aliases.items():
            self.client.set_prompt_alias(name, alias, int(version))

    def stage(self, name: str, version: str, stage: str, archive: bool = False) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.transition_model_version_stage(
                name, version, stage, archive_existing_versions=archive
            )

    def stages(self, name: str) -> dict[str, str]:
        found = self.client.search_model_versions(f"name = '{name}'")
        return {str(mv.version): mv.current_stage for mv in found}

    def aliases(self, name: str) -> dict[str, str]:
        return {k: str(v) for k, v in self.client.get_registered_model(name).aliases.items()}

    def run_id(self, name: str, version: str) -> str:
        return str(self.client.get_model_version(name, version).run_id)


@pytest.fixture
def seeder(mlflow_server: str) -> Seeder:
    return Seeder(mlflow_server)
