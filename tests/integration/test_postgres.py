"""MLflow on PostgreSQL, as production runs it (`--workers 4`), with both drivers SQLAlchemy picks:
`postgresql+psycopg2://` and plain `postgresql://` (psycopg 3), which cannot archive atomically
(DESIGN §6). Racing writers are separate processes: threads in one process under-report races."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.messages import NO_ATOMIC_ARCHIVE
from reconciler.registry.mlflow_registry import MlflowRegistry
from reconciler.registry.values import ARCHIVED, NONE_STAGE
from tests.conftest import Repo, make_runner
from tests.integration.conftest import POSTGRES_DRIVERS, Seeder, backend_url
from tests.support.proxy import RecordingProxy

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

RECONCILER = str(Path(sys.executable).parent / "reconciler")
TRANSITION = "transition-stage"
NOTE = "cannot archive and transition in one call"


@pytest.mark.parametrize("backend", POSTGRES_DRIVERS)
def test_promotion_archives_on_both_drivers(request: pytest.FixtureRequest, backend: str) -> None:
    url = backend_url(request, backend)
    seeder = Seeder(url)
    names = [seeder.name(f"pg-promote{i}") for i in range(2)]
    for name in names:
        seeder.model(name, [0.5, 0.6, 0.7])
        seeder.stage(name, "1", PRODUCTION)
        seeder.stage(name, "2", STAGING)
    proxy = RecordingProxy(url)
    try:
        registry = MlflowRegistry(proxy.url)
        calls = []
        for name in names:
            proxy.clear()
            registry.transition_stage(name, "3", PRODUCTION, archive_existing=True)
            calls.append(sum(TRANSITION in path for _method, path in proxy.requests))
    finally:
        proxy.close()
    for name in names:
        assert seeder.stages(name) == {"1": ARCHIVED, "2": STAGING, "3": PRODUCTION}
    if backend == "psycopg2":
        assert calls == [1, 1]  # MLflow's own archive-and-transition, one call
        assert registry.notices == []
    else:
        # The atomic call is refused once; from then on: move in, archive the previous holder.
        assert calls == [3, 2]
        assert registry.notices == [NO_ATOMIC_ARCHIVE]


@pytest.mark.parametrize("backend", POSTGRES_DRIVERS)
def test_promote_and_revert_through_the_cli(
    request: pytest.FixtureRequest, backend: str, repo: Repo
) -> None:
    url = backend_url(request, backend)
    seeder = Seeder(url)
    model = seeder.name("pg-churn")
    seeder.model(model, [0.81, 0.86, 0.91])
    run = make_runner(repo.root, tracking_uri=url)
    repo.pin("production", model, 1)
    repo.pin("staging", model, 2)
    repo.commit("pin")
    first = run("apply")
    assert first.exit_code == 0, first.stdout + first.stderr
    assert seeder.stages(model) == {"1": PRODUCTION, "2": STAGING, "3": NONE_STAGE}

    repo.pin("production", model, 2)
    repo.pin("staging", model, 3)
    repo.commit("promote v2 to production")
    promoted = run("apply")
    assert promoted.exit_code == 0, promoted.stdout + promoted.stderr
    assert seeder.stages(model) == {"1": ARCHIVED, "2": PRODUCTION, "3": STAGING}
    # Said once per apply, and only where the server cannot archive atomically.
    assert promoted.stderr.count(NOTE) == (1 if backend == "psycopg3" else 0), promoted.stderr

    repo.git("revert", "--no-edit", "HEAD")
    reverted = run("apply")
    assert reverted.exit_code == 0, reverted.stdout + reverted.stderr
    assert seeder.stages(model) == {"1": PRODUCTION, "2": STAGING, "3": ARCHIVED}
    assert run("plan", "--detailed-exitcode").exit_code == 0


def git_repo(path: Path, model: str, version: int) -> Path:
    repo = Repo(path)
    repo.pin("production", model, version)
    repo.commit(f"pin v{version}")
    return path


@pytest.mark.parametrize("backend", POSTGRES_DRIVERS)
def test_racing_apply_processes_never_double_production(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> None:
    """Two repositories pin different versions of one model and apply at once (--force and
    --take-ownership: they would otherwise fence each other, and the loser would be refused as
    not the owner). benchmarks/bench_postgres_races.py runs 30 trials and
    races plain MlflowClient processes beside them."""
    url = backend_url(request, backend)
    seeder = Seeder(url)
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    for trial in range(2):
        name = seeder.name(f"pg-race{trial}")
        seeder.model(name, [0.5, 0.6, 0.7])
        seeder.stage(name, "1", PRODUCTION)
        repos = [git_repo(tmp_path / f"{trial}-{v}", name, v) for v in (2, 3)]
        processes = [
            subprocess.Popen(
                [RECONCILER, "apply", "--force", "--take-ownership"],
                cwd=repo,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for repo in repos
        ]
        outputs = [process.communicate(timeout=300) for process in processes]
        assert [process.returncode for process in processes] == [0, 0], outputs
        stages = seeder.stages(name)
        assert [v for v, stage in stages.items() if stage == PRODUCTION] in (["2"], ["3"]), stages


def _set_champion(url: str, models: list[str], version: str, barrier: Any, failures: Any) -> None:
    """One racing process: for each model, wait for the other process, then set the alias."""
    registry = MlflowRegistry(url)
    for model in models:
        barrier.wait(timeout=120)
        try:
            registry.set_alias(model, "champion", version)
        except Exception as error:  # reported to the test, which asserts there are none
            failures.put(f"{model}: {error}")
    failures.put(None)


@pytest.mark.parametrize("backend", POSTGRES_DRIVERS)
def test_racing_first_alias_creation_from_processes(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """The database refuses the second insert (`UniqueViolation ... duplicate key`, DESIGN §6);
    the adapter's single retry turns it into an update, so neither process fails."""
    url = backend_url(request, backend)
    seeder = Seeder(url)
    models = [seeder.name(f"pg-alias{trial}") for trial in range(20)]
    for model in models:
        seeder.client.create_registered_model(model)
        for _version in ("1", "2"):
            seeder.client.create_model_version(model, source="s3://bucket/model")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    failures = context.Queue()
    processes = [
        context.Process(target=_set_champion, args=(url, models, v, barrier, failures))
        for v in ("1", "2")
    ]
    for process in processes:
        process.start()
    reported: list[str] = []
    finished = 0
    while finished < len(processes):
        item = failures.get(timeout=180)  # a dead process fails the test, never hangs it
        if item is None:
            finished += 1
        else:
            reported.append(item)
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0]
    assert reported == []
    for model in models:
        assert seeder.aliases(model)["champion"] in ("1", "2")
