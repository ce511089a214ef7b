"""A real `mlflow server` on 127.0.0.1 for the whole session, and helpers to shape its registry."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.proxy import RecordingProxy

SERVER_START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(
        f"mlflow server not healthy after {SERVER_START_TIMEOUT}s:\n{log.read_text()[-3000:]}"
    )


def start_server(
    workdir: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    # One worker and no job runners: ready in ~5 s with ~480 MB instead of ~12 s and ~3 GB (DESIGN §6).
    server_env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    server_env.pop("MLFLOW_TRACKING_URI", None)
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    command = [
        str(mlflow_cli), "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--default-artifact-root", str(workdir / "artifacts"),
        *extra,
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=server_env, start_new_session=True
        )
    _wait_until_healthy(url, process, log)
    return url, process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers by the process group of the PID we started."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_server(tmp_path_factory.mktemp("mlflow-server"))
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
