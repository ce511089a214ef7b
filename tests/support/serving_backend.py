"""Real processes for the serving tests: sklearn models logged to the mlflow server, and the
reference backend (`python -m serving`) started on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.server import free_port

PROJECT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120

# Version k of the model is y = k * x: its prediction for x = 1 says which version answered.
LOG_MODELS = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import mlflow, mlflow.sklearn, pandas as pd
    from sklearn.linear_model import LinearRegression

    uri, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    rows = pd.DataFrame({"x": [float(i) for i in range(10)]})
    versions = []
    for slope in range(1, count + 1):
        model = LinearRegression().fit(rows, rows["x"] * slope)
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=name,
                pip_requirements=["scikit-learn", "pandas"],  # inferring them is slow
            )
        versions.append(str(info.registered_model_version))
    print(json.dumps(versions))
    """
)


def log_sklearn_models(uri: str, name: str, count: int) -> list[str]:
    """Train and register `count` tiny linear models as versions 1..count of `name`."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run(
        [sys.executable, "-c", LOG_MODELS, uri, name, str(count)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"logging models failed:\n{done.stderr[-3000:]}")
    versions: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return versions


class Backend:
    """`python -m serving` as a subprocess on 127.0.0.1; its log is kept for failures."""

    def __init__(self, workdir: Path, uri: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serving-{self.port}.log"
        env = {**os.environ, "PYTHONPATH": str(PROJECT), "MLFLOW_TRACKING_URI": uri}
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "serving", "--port", str(self.port), *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )

    def get(self, path: str = "/health") -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def post(self, path: str, document: object) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(document).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def wait_serving(self) -> dict[str, Any]:
        """Block until /health answers 200 (a model is loaded); its document."""
        document = self._wait(lambda status: status == 200)[1]
        return dict(document)

    def wait_up(self) -> tuple[int, Any]:
        """Block until /health answers at all (503 while loading)."""
        return self._wait(lambda status: status != 0)

    def _wait(self, ready: Callable[[int], bool]) -> tuple[int, Any]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"backend exited {self.process.returncode}:\n{self.output()}")
            try:
                status, document = self.get()
            except OSError:
                status, document = 0, None
            if ready(status):
                return status, document
            time.sleep(0.25)
        raise RuntimeError(f"backend not ready after {START_TIMEOUT}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
