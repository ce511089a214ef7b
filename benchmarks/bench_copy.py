"""Figures for issue 17, printed (never asserted): copying a model version between registries.

Two local `mlflow server`s, each with its own backend and proxied artifacts (`mlflow-artifacts:`,
files moving over HTTP both ways). The source holds an sklearn model plus a weights file of
--megabytes. Each round copies that version into a new target model twice:
  * ensure_copy: download, content digest, upload into a `reconciler-copies` run, download back
    and compare the digest, then create_model_version with the lineage tags in one request;
  * a plain script: mlflow.artifacts.download_artifacts + log_artifacts into a run +
    create_model_version (what a one-shot copy script does: no check, no lineage, no resume).
Prints MB/s (megabytes of artifacts / wall seconds) side by side; the best round of --rounds.

Run from the repository root with the test extra installed:
    .venv/test/bin/python benchmarks/bench_copy.py [--megabytes 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reconciler.apply.copying import ensure_copy  # noqa: E402
from reconciler.registry.lineage import Lineage  # noqa: E402
from reconciler.registry.mlflow_registry import MlflowRegistry  # noqa: E402
from tests.support.server import start_server, stop_server  # noqa: E402

PROXIED = ("--serve-artifacts", "--default-artifact-root", "mlflow-artifacts:/")


def seed(url: str, megabytes: int) -> int:
    """Version 1 of `churn`: an sklearn model saved with a weights file; its size in bytes."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # MLflow configures it on import
    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    run = client.create_run("0")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        mlflow.sklearn.save_model(model, str(folder), pip_requirements=["scikit-learn"])
        (folder / "weights.bin").write_bytes(np.random.default_rng(0).bytes(megabytes << 20))
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        client.log_artifacts(run.info.run_id, str(folder), "model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("churn")
    client.create_model_version("churn", f"{run.info.artifact_uri}/model", run.info.run_id)
    return size


def plain_copy(source: str, target: str, into: str) -> None:
    """The one-shot script: download, log into a run, register (no check, no lineage)."""
    import mlflow

    client: Any = mlflow.MlflowClient(tracking_uri=target, registry_uri=target)
    # Not artifact_uri="models:/churn/1": MLflow 3.17.2's models:/ repository ignores the
    # registry_uri passed and asks the process's default registry (measured: it created an
    # empty ./mlflow.db and failed). The download URI is what works with an explicit URI.
    location = mlflow.MlflowClient(source, source).get_model_version_download_uri("churn", "1")
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=tmp, tracking_uri=source
        )
        run = client.create_run("0")
        client.log_artifacts(run.info.run_id, local, "model")
        client.set_terminated(run.info.run_id)
    client.create_registered_model(into)
    client.create_model_version(into, f"{run.info.artifact_uri}/model", run.info.run_id)


def reconciler_copy(source: str, target: str, into: str) -> None:
    src, dst = MlflowRegistry(source), MlflowRegistry(target)
    wanted = Lineage(src.describe(), "churn", "1", None)
    result = ensure_copy(src, dst, wanted, dst.read_versions(into), model=into)
    assert result.copied
    assert result.version.status == "READY"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        started = []
        try:
            for side in ("source", "target"):
                workdir = Path(tmp) / side
                workdir.mkdir()
                extra = (*PROXIED, "--artifacts-destination", str(workdir / "proxied"))
                started.append(start_server(workdir, *extra))
            (source, _), (target, _) = started
            size = seed(source, args.megabytes)
            megabytes = size / (1 << 20)
            print(f"copy of one version, {megabytes:.1f} MB, between two local mlflow servers")
            best: dict[str, float] = {}
            for round_ in range(args.rounds):
                for label, copy in (("ensure_copy", reconciler_copy), ("plain", plain_copy)):
                    began = time.perf_counter()
                    copy(source, target, f"churn-{label}-{round_}")
                    seconds = time.perf_counter() - began
                    best[label] = min(best.get(label, seconds), seconds)
            for label, seconds in best.items():
                print(f"  {label:12} {seconds:6.2f} s  {megabytes / seconds:7.1f} MB/s  (best of "
                      f"{args.rounds})")  # fmt: skip
            print(
                f"  ensure_copy moves the files three times (download, upload, download back "
                f"for the digest check): {best['ensure_copy'] / best['plain']:.2f}x the plain "
                "script's time"
            )
        finally:
            for _url, process in started:
                stop_server(process)


if __name__ == "__main__":
    main()
