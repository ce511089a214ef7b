"""The serving tour: serving follows the pins, and `reconciler verify` proves it.

Run through `scripts/serving-tour` (which installs the tool and serving/requirements.txt first).
In a temp folder: a fresh git repository, MLflow's sqlite registry, three tiny sklearn models
(version k predicts y = k * x), the reference backend following Production on 127.0.0.1. Then a
promotion that `apply --verify` waits for, a `git revert` rollback, and a backend that stopped
reloading, caught by `verify`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = "churn-model"


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tour:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.uri = f"sqlite:///{workdir / 'mlflow.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        self.env.update(
            MLFLOW_TRACKING_URI=self.uri,
            GIT_AUTHOR_NAME="Tour",
            GIT_AUTHOR_EMAIL="tour@example.invalid",
            GIT_COMMITTER_NAME="Tour",
            GIT_COMMITTER_EMAIL="tour@example.invalid",
            PYTHONPATH=str(REPO),
        )
        self.backend: subprocess.Popen[bytes] | None = None
        self.port = free_port()

    def shell(self, *command: str, expect: int = 0) -> int:
        print(f"$ {shlex.join(command)}", flush=True)
        done = subprocess.run(command, cwd=self.workdir, env=self.env, check=False)
        if done.returncode != expect:
            sys.exit(f"tour: `{shlex.join(command)}` exited {done.returncode}, expected {expect}")
        return done.returncode

    def write(self, relative: str, text: str) -> None:
        path = self.workdir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"# {relative}\n{text}", end="", flush=True)

    def train(self, count: int) -> None:
        """What a training pipeline does: fit, log, register. Version k predicts y = k * x."""
        os.chdir(self.workdir)
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # database creation chatter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow
            import mlflow.sklearn
            import pandas as pd
            from sklearn.linear_model import LinearRegression

            mlflow.set_tracking_uri(self.uri)
            rows = pd.DataFrame({"x": [float(i) for i in range(10)]})
            for slope in range(1, count + 1):
                model = LinearRegression().fit(rows, rows["x"] * slope)
                with mlflow.start_run():
                    # Named requirements: inferring them imports the model in a subprocess.
                    info = mlflow.sklearn.log_model(
                        model,
                        name="model",
                        registered_model_name=MODEL,
                        pip_requirements=["scikit-learn", "pandas"],
                    )
                print(f"registered {MODEL} v{info.registered_model_version} (y = {slope} * x)")

    def start_backend(self, interval: str) -> None:
        command = [sys.executable, "-m", "serving", "--model", MODEL, "--stage", "Production"]
        command += ["--port", str(self.port), "--interval", interval]
        print(f"$ {shlex.join(['python', *command[1:]])} &", flush=True)
        self.backend = subprocess.Popen(command, cwd=self.workdir, env=self.env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.25)
        sys.exit("tour: the backend did not start")

    def stop_backend(self) -> None:
        if self.backend is not None:
            self.backend.terminate()
            self.backend.wait(timeout=15)
            self.backend = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def curl(self, path: str, rows: object | None = None) -> None:
        data = None if rows is None else json.dumps(rows).encode()
        shown = f"curl {self.url}{path}" + ("" if data is None else f" -d '{data.decode()}'")
        print(f"$ {shown}", flush=True)
        with urllib.request.urlopen(
            urllib.request.Request(f"{self.url}{path}", data), timeout=30
        ) as r:
            print(r.read().decode(), flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="serving-tour-") as folder:
        tour = Tour(Path(folder))
        try:
            run(tour)
        finally:
            tour.stop_backend()
            os.chdir(REPO)


def run(tour: Tour) -> None:
    banner("a registry with three versions, a git repository with the pins")
    tour.train(3)
    tour.shell("git", "init", "-q", "-b", "main")
    tour.write(
        "environments/production.yaml",
        f"stage: Production\nserving:\n  url: {tour.url}/health\n  interval: 1s\n  timeout: 2m\n",
    )
    tour.write(f"environments/production/{MODEL}.yaml", f"model: {MODEL}\nversion: 1\n")
    tour.shell("git", "add", "-A")
    tour.shell("git", "commit", "-q", "-m", f"pin {MODEL} v1")
    tour.shell("reconciler", "apply")

    banner("the reference backend follows Production; verify proves it serves v1")
    tour.start_backend("1")
    tour.shell("reconciler", "verify")
    tour.curl("/health")

    banner("promotion: apply --verify waits until serving has reloaded v2")
    tour.shell("reconciler", "promote", MODEL, "--to", "production", "--version", "2", "--commit")
    tour.shell("reconciler", "apply", "--verify")
    tour.curl("/predict", [{"x": 1.0}])

    banner("rollback: git revert, apply --verify, serving is back on v1")
    tour.shell("git", "revert", "--no-edit", "HEAD")
    tour.shell("reconciler", "apply", "--verify")
    tour.curl("/predict", [{"x": 1.0}])

    banner("a backend that stopped reloading: verify fails, naming pinned and served")
    tour.stop_backend()
    tour.start_backend("3600")
    tour.shell("reconciler", "promote", MODEL, "--to", "production", "--version", "3", "--commit")
    tour.shell("reconciler", "apply")
    tour.shell("reconciler", "verify", "--timeout", "3", expect=1)

    banner("done; in CI the failure fails the job, notifies, and opens a revert pull request")


if __name__ == "__main__":
    main()
