"""Figures for issue 5, printed (never asserted):

1. Racing archive-and-transitions: plain `MlflowClient` calls from two threads (the baseline
   DESIGN §6 measured) against two `reconciler apply` processes from two repositories that pin
   different versions of the same model (with --force: unrelated repositories would otherwise
   fence each other, which is the point of fencing but not what is measured here). Counted:
   trials ending with more than one version in Production.
2. Fault runs: `reconciler apply` through a fault-injecting proxy, then (if it failed) a second
   apply without faults. Counted: runs converged, runs with two versions in a stage.

    .venv/test/bin/python benchmarks/bench_races_and_faults.py [--trials 20] [--fault-runs 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.proxy import Fault, RecordingProxy  # noqa: E402
from tests.support.server import start_server, stop_server  # noqa: E402

RECONCILER = str(Path(sys.executable).parent / "reconciler")
FAULTS = {
    "503 once": Fault("status", "transition-stage", status=503, skip=1),
    "429 + Retry-After": Fault("status", "transition-stage", status=429, retry_after="1", skip=1),
    "reset once": Fault("reset", "transition-stage", skip=1),
    "answer lost x10": Fault("lose_response", "transition-stage", times=10, skip=1),
    "hang past timeout": Fault("hang", "transition-stage", hang_seconds=4, skip=1),
    "500 persistent": Fault("status", "transition-stage", status=500, times=1000, skip=1),
    "down after 1st write": Fault("reset", "/api/", times=10_000, after="transition-stage"),
}


def in_production(client: Any, name: str) -> int:
    versions = client.search_model_versions(f"name = '{name}'")
    return sum(1 for mv in versions if mv.current_stage == "Production")


def seed(client: Any, name: str, versions: int) -> None:
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source=f"s3://bench/{name}")


def git_repo(path: Path, pins: dict[str, int]) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    for name, version in pins.items():
        pin = path / "environments" / "production" / f"{name}.yaml"
        pin.parent.mkdir(parents=True, exist_ok=True)
        pin.write_text(f"model: {name}\nversion: {version}\n")
    return path


def baseline_races(client: Any, trials: int) -> int:
    doubled = 0
    for trial in range(trials):
        name = f"baseline-{trial}"
        seed(client, name, 3)
        barrier = threading.Barrier(2)

        def promote(version: str, model: str = name, gate: threading.Barrier = barrier) -> None:
            gate.wait()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                client.transition_model_version_stage(
                    model, version, "Production", archive_existing_versions=True
                )

        threads = [threading.Thread(target=promote, args=(v,)) for v in ("2", "3")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        doubled += in_production(client, name) > 1
    return doubled


def reconciler_races(client: Any, url: str, workdir: Path, trials: int) -> tuple[int, int]:
    doubled = failed = 0
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    for trial in range(trials):
        name = f"raced-{trial}"
        seed(client, name, 3)
        clones = [git_repo(workdir / f"race-{trial}-{v}", {name: v}) for v in (2, 3)]
        processes = [
            subprocess.Popen([RECONCILER, "apply", "--force", "--take-ownership"], cwd=c, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for c in clones
        ]  # fmt: skip
        failed += sum(p.wait(timeout=300) != 0 for p in processes)
        doubled += in_production(client, name) > 1
    return doubled, failed


def fault_runs(client: Any, url: str, workdir: Path, runs: int) -> None:
    print(f"\n{'fault':<22} runs  1st apply ok  converged  two in a stage")
    env_base = {**os.environ, "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    for label, template in FAULTS.items():
        first_ok = converged = doubled = 0
        for run in range(runs):
            names = [f"fault-{label.replace(' ', '-')}-{run}-{i}" for i in range(3)]
            for name in names:
                seed(client, name, 2)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    client.transition_model_version_stage(name, "1", "Production")
            repo = git_repo(workdir / names[0], dict.fromkeys(names, 2))
            proxy = RecordingProxy(url)
            proxy.faults.append(Fault(**{**template.__dict__, "injected": 0, "armed": False}))
            env = {**env_base, "MLFLOW_TRACKING_URI": proxy.url}
            try:
                first = subprocess.run(
                    [RECONCILER, "apply"], cwd=repo, env=env, capture_output=True
                )
            finally:
                proxy.close()
            first_ok += first.returncode == 0
            env["MLFLOW_TRACKING_URI"] = url
            # A dead apply may leave its lease behind; the default wait (60 s) covers its expiry.
            subprocess.run([RECONCILER, "apply", "--lease-wait", "150"], cwd=repo, env=env,
                           capture_output=True)  # fmt: skip
            plan = subprocess.run([RECONCILER, "plan", "--detailed-exitcode"], cwd=repo, env=env,
                                  capture_output=True)  # fmt: skip
            converged += plan.returncode == 0
            doubled += any(in_production(client, n) > 1 for n in names)
        print(f"{label:<22} {runs:4d}  {first_ok:12d}  {converged:9d}  {doubled:14d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--fault-runs", type=int, default=3)
    args = parser.parse_args()
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # after the import: MLflow sets it

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, process = start_server(workdir)
        try:
            client = MlflowClient(tracking_uri=url, registry_uri=url)
            base = baseline_races(client, args.trials)
            ours, failed = reconciler_races(client, url, workdir, args.trials)
            print(f"racing promotions, {args.trials} trials each (two writers per trial):")
            print(
                f"  MlflowClient archive-and-transition x2   {base:3d} ended with 2 in Production"
            )
            print(f"  reconciler apply x2 (two clones)         {ours:3d} ended with 2 in Production"
                  f" ({failed} applies exited non-zero)")  # fmt: skip
            fault_runs(client, url, workdir, args.fault_runs)
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()
