"""Figures for issue 11 §2, printed (never asserted): racing writers on `mlflow server --workers 4`
backed by PostgreSQL, once per driver (`postgresql+psycopg2://` and `postgresql://` = psycopg 3).

Every racer is its own process (threads in one process under-report these races, DESIGN §6):

1. Promotions: two plain `MlflowClient` processes call transition_model_version_stage(v2 or v3,
   Production, archive_existing_versions=True) at the same instant (a barrier), against two
   `reconciler apply --force` processes from two repositories pinning v2 and v3. Counted: trials
   ending with more than one version in Production, and calls that failed.
2. First-time alias creation: two processes set the same new alias at once, plain MlflowClient
   against the reconciler's adapter (which retries once on the database's "duplicate key").

    .venv/test/bin/python benchmarks/bench_postgres_races.py [--trials 30] [--drivers psycopg3]

Needs PostgreSQL binaries (see tests/support/postgres.py).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.postgres import start_postgres, stop_postgres  # noqa: E402
from tests.support.server import start_server, stop_server  # noqa: E402

RECONCILER = str(Path(sys.executable).parent / "reconciler")
DRIVERS = {"psycopg2": "psycopg2", "psycopg3": ""}


def _quiet() -> None:
    warnings.simplefilter("ignore", FutureWarning)
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def _plain_promote(client: Any, model: str, version: str) -> None:
    client.transition_model_version_stage(
        model, version, "Production", archive_existing_versions=True
    )


def _plain_alias(client: Any, model: str, version: str) -> None:
    client.set_registered_model_alias(model, "champion", version)


def _adapter_alias(registry: Any, model: str, version: str) -> None:
    registry.set_alias(model, "champion", version)


def _racer(
    url: str, kind: str, models: list[str], version: str, barrier: Any, results: Any
) -> None:
    """One racing process: per model, wait for the other racer, then write; report failures."""
    _quiet()
    if kind == "adapter":
        from reconciler.registry.mlflow_registry import MlflowRegistry

        target: Any = MlflowRegistry(url)
        write: Callable[[Any, str, str], None] = _adapter_alias
    else:
        from mlflow import MlflowClient

        target = MlflowClient(tracking_uri=url, registry_uri=url)
        write = _plain_promote if kind == "promote" else _plain_alias
    failed = 0
    for model in models:
        barrier.wait(timeout=300)
        try:
            write(target, model, version)
        except Exception:
            failed += 1
    results.put(failed)


def race_processes(url: str, kind: str, models: list[str], versions: tuple[str, str]) -> int:
    """Run two racing processes over `models`; return the number of failed writes."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=_racer, args=(url, kind, models, v, barrier, results))
        for v in versions
    ]
    for process in processes:
        process.start()
    failed = sum(results.get(timeout=600) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    return int(failed)


def seed(client: Any, name: str, versions: int) -> None:
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source=f"s3://bench/{name}")


def in_production(client: Any, name: str) -> int:
    return sum(
        1
        for mv in client.search_model_versions(f"name = '{name}'")
        if mv.current_stage == "Production"
    )


def git_repo(path: Path, name: str, version: int) -> Path:
    pin = path / "environments" / "production" / f"{name}.yaml"
    pin.parent.mkdir(parents=True)
    pin.write_text(f"model: {name}\nversion: {version}\n")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "pin"]):
        subprocess.run(["git", *command], cwd=path, check=True, capture_output=True)
    return path


def reconciler_races(client: Any, url: str, workdir: Path, trials: int) -> tuple[int, int]:
    doubled = failed = 0
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    for trial in range(trials):
        name = f"raced-{trial}"
        seed(client, name, 3)
        repos = [git_repo(workdir / f"race-{trial}-{v}", name, v) for v in (2, 3)]
        processes = [
            subprocess.Popen([RECONCILER, "apply", "--force", "--take-ownership"], cwd=r, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for r in repos
        ]  # fmt: skip
        failed += sum(p.wait(timeout=300) != 0 for p in processes)
        doubled += in_production(client, name) > 1
    return doubled, failed


def bench_driver(postgres: Any, driver: str, trials: int, workdir: Path) -> None:
    from mlflow import MlflowClient

    database = f"bench_{driver}"
    postgres.create_database(database)
    started = time.monotonic()
    url, process = start_server(workdir, backend=postgres.uri(database, DRIVERS[driver]), workers=4)
    print(f"\n{driver}: mlflow server --workers 4 ready in {time.monotonic() - started:.1f} s")
    try:
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        plain = [f"plain-{i}" for i in range(trials)]
        for name in plain:
            seed(client, name, 3)
        section = time.monotonic()
        plain_failed = race_processes(url, "promote", plain, ("2", "3"))
        plain_wall = time.monotonic() - section
        plain_doubled = sum(in_production(client, name) > 1 for name in plain)
        section = time.monotonic()
        ours_doubled, ours_failed = reconciler_races(client, url, workdir, trials)
        ours_wall = time.monotonic() - section
        print(f"  racing promotions, {trials} trials, two processes each:")
        print(f"    MlflowClient archive-and-transition  {plain_doubled:3d} doubled Production"
              f"  ({plain_failed} calls failed; {plain_wall:.0f} s)")  # fmt: skip
        print(f"    reconciler apply --force             {ours_doubled:3d} doubled Production"
              f"  ({ours_failed} applies exited non-zero; {ours_wall:.0f} s)")  # fmt: skip
        for kind, label in (("alias", "MlflowClient"), ("adapter", "reconciler adapter")):
            names = [f"{kind}-{i}" for i in range(trials)]
            for name in names:
                seed(client, name, 2)
            failed = race_processes(url, kind, names, ("1", "2"))
            missing = sum("champion" not in client.get_registered_model(n).aliases for n in names)
            print(f"  first-time alias, {trials} trials: {label:<20} {failed:3d} writes failed,"
                  f" {missing} aliases missing")  # fmt: skip
    finally:
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--drivers", default="psycopg2,psycopg3")
    args = parser.parse_args()
    _quiet()
    postgres = start_postgres()
    print(f"PostgreSQL {postgres.version} on 127.0.0.1:{postgres.port}")
    try:
        for driver in args.drivers.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                bench_driver(postgres, driver, args.trials, Path(tmp))
    finally:
        stop_postgres(postgres)


if __name__ == "__main__":
    main()
