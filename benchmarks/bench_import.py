"""Figures for issue 9, printed (never asserted): `reconciler import` of a live registry.

A local `mlflow server` with N models (each: 3 versions, v1 in Production, v2 in Staging); import
into an empty git repository, then import again. Prints wall time, the HTTP calls each run made
(the cheap read: no loop per model) and the writes (none).

Run from the repository root with the test extra installed:
    .venv/test/bin/python benchmarks/bench_import.py [--models 200]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.proxy import RecordingProxy  # noqa: E402
from tests.support.server import start_server, stop_server  # noqa: E402

BIN = Path(sys.executable).parent


def seed(url: str, models: int) -> float:
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    started = time.perf_counter()
    for i in range(models):
        name = f"model-{i:04d}"
        client.create_registered_model(name)
        for _ in range(3):
            client.create_model_version(name, source=f"s3://benchmark-bucket/{name}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            client.transition_model_version_stage(name, "1", "Production")
            client.transition_model_version_stage(name, "2", "Staging")
    return time.perf_counter() - started


def run_import(repo: Path, proxy: RecordingProxy) -> tuple[float, int, int, str]:
    proxy.clear()
    env = {**os.environ, "MLFLOW_TRACKING_URI": proxy.url}
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "reconciler"), "import"], cwd=repo, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = next(line for line in done.stdout.splitlines() if line.startswith("Import:"))
    return seconds, len(proxy.requests), len(proxy.writes()), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, process = start_server(workdir)
        try:
            seeded = seed(url, args.models)
            print(
                f"import, {args.models} models x 3 versions (v1 Production, v2 Staging) on a "
                f"local mlflow server (seeded in {seeded:.1f} s)"
            )
            repo = workdir / "repo"
            repo.mkdir()
            subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
            proxy = RecordingProxy(url)
            try:
                for label in ("first import ", "second import"):
                    seconds, calls, writes, summary = run_import(repo, proxy)
                    print(
                        f"  {label}  {seconds:6.2f} s wall (with imports), {calls} HTTP calls, "
                        f"{writes} writes: {summary}"
                    )
            finally:
                proxy.close()
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()
