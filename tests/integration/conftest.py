"""A real `mlflow server` on 127.0.0.1 for the whole session, and helpers to shape its registry."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.proxy import RecordingProxy
from tests.support.server import start_or_fail, stop_server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_or_fail(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield url
    finally:
        stop_server(process)


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
