"""Adopting a live registry: `reconciler import` against a real `mlflow server`, in a real git
repository, then `validate`, `plan` and `import` again; the registry is never written.

`import` reads the whole registry, so these tests use a server of their own: the session
server is shared with tests that leave their models behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.values import ARCHIVED, NONE_STAGE
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.proxy import RecordingProxy
from tests.support.server import start_or_fail, stop_server

pytestmark = pytest.mark.integration

DOTS = "fraud.detector.v2"
SPACES = "churn model"
DOUBLED = "ranker"
ALIASED = "edge-model"
NOWHERE = "scratch"
UNICODE = "modèle-模型"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_or_fail(tmp_path_factory.mktemp("import-server"))
    try:
        yield url
    finally:
        stop_server(process)


def seed_mix(seeder: Seeder, doubled: bool = True) -> None:
    """The mix a team's registry has after years by hand: Production only, Staging and
    Production, a stage holding two versions, a model served by alias only, one in no stage,
    names with dots, spaces and unicode."""
    seeder.model(DOTS, [0.8])
    seeder.stage(DOTS, "1", PRODUCTION)
    seeder.model(SPACES, [0.7, 0.8, 0.9])
    seeder.stage(SPACES, "2", PRODUCTION)
    seeder.stage(SPACES, "3", STAGING)
    if doubled:
        seeder.model(DOUBLED, [0.6, 0.7])
        seeder.stage(DOUBLED, "2", PRODUCTION)
        time.sleep(0.01)  # last_updated_timestamp is in milliseconds: two distinct moments
        seeder.stage(DOUBLED, "1", PRODUCTION)  # by hand, without archiving: moved in last
    seeder.model(ALIASED, [0.5, 0.6])
    seeder.client.set_registered_model_alias(ALIASED, "edge", "2")
    seeder.model(NOWHERE, [0.1])
    seeder.model(UNICODE, [0.9])
    seeder.stage(UNICODE, "1", STAGING)


@pytest.fixture(scope="module")
def seeded(own_server: str) -> Seeder:
    seeder = Seeder(own_server)
    seed_mix(seeder)
    return seeder


def _tree(root: Path) -> dict[str, str]:
    base = root / "environments"
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def test_import_validate_plan_and_import_again(
    tmp_path: Path, seeded: Seeder, own_server: str
) -> None:
    proxy = RecordingProxy(own_server)
    try:
        _adopt(tmp_path, seeded, proxy)
    finally:
        proxy.close()


def _adopt(tmp_path: Path, seeded: Seeder, proxy: RecordingProxy) -> None:
    repo = Repo(tmp_path / "repo")
    # The only thing a team writes by hand: the alias-only environment's settings.
    repo.write("environments/edge.yaml", "stage: null\nalias: edge\n")
    run = make_runner(repo.root, tracking_uri=proxy.url)

    imported = run("import", "--format", "json")
    assert imported.exit_code == 0, imported.stderr
    document = json.loads(imported.stdout)
    assert document["registry"] == proxy.url
    assert [
        (p["environment"], p["model"], p["version"], p["outcome"]) for p in document["pins"]
    ] == [
        ("production", SPACES, "2", "written"),
        ("production", DOTS, "1", "written"),
        ("production", DOUBLED, "1", "written"),
        ("staging", SPACES, "3", "written"),
        ("staging", UNICODE, "1", "written"),
        ("edge", ALIASED, "2", "written"),
    ]
    doubled = next(p for p in document["pins"] if p["model"] == DOUBLED)
    assert doubled["notes"] == [
        "Production also holds v2: plan will archive it (v1 was moved in last)"
    ]
    assert document["skipped"] == []
    assert proxy.writes() == []
    reads = len(proxy.requests)
    # Whether the server has workspaces, models, prompts, then versions of the ones serving
    # (a second page at most): no per-model loop.
    assert 0 < reads <= 5, proxy.requests
    assert sum("server-info" in path for _method, path in proxy.requests) == 1

    files = _tree(repo.root)
    pin = files[f"environments/production/{SPACES}.yaml"].splitlines()
    assert pin[0] == f"# imported from {proxy.url} at {pin[0].split(' at ')[1]}"
    assert pin[1:] == [
        f"model: {SPACES}",
        "version: 2",
        f"run_id: {seeded.run_id(SPACES, '2')}",
    ]
    assert f"environments/production/{NOWHERE}.yaml" not in files
    assert run("validate").exit_code == 0

    repo.commit("Adopt the registry")
    proxy.clear()
    plan = run("plan", "--format", "json", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stderr  # the drift import reported, nothing else
    changes = json.loads(plan.stdout)["changes"]
    assert [(c["kind"], c["model"], c["version"]) for c in changes] == [("archive", DOUBLED, "2")]
    statuses = {
        (p["environment"], p["model"]): p["status"] for p in json.loads(plan.stdout)["pins"]
    }
    assert statuses.pop(("production", DOUBLED)) == "change"
    assert set(statuses.values()) == {"in_sync"}

    proxy.clear()
    again = run("import")
    assert again.exit_code == 0, again.stderr
    assert "Import: 6 unchanged. Nothing was written to the registry." in again.stdout
    assert _tree(repo.root) == files
    assert repo.git("status", "--porcelain") == ""
    assert proxy.writes() == []
    # The registry is as it was.
    assert seeded.stages(DOUBLED) == {"1": PRODUCTION, "2": PRODUCTION}
    assert seeded.stages(NOWHERE) == {"1": NONE_STAGE}
    assert ARCHIVED not in seeded.stages(SPACES).values()


def test_promote_checks_the_real_registry(tmp_path: Path, seeded: Seeder, own_server: str) -> None:
    repo = Repo(tmp_path / "repo")
    repo.pin("production", DOTS, 1)
    original = (repo.root / f"environments/production/{DOTS}.yaml").read_text()
    run = make_runner(repo.root, tracking_uri=own_server)
    missing = run("promote", DOTS, "--to", "production", "--version", "5")
    assert missing.exit_code == 1
    assert missing.stderr == f"error: {DOTS} v5 not found in the registry (READY versions: v1)\n"
    assert (repo.root / f"environments/production/{DOTS}.yaml").read_text() == original
    offline = run("promote", DOTS, "--to", "production", "--version", "5", "--offline")
    assert offline.exit_code == 0, offline.stderr
    assert offline.stdout.startswith("offline: not checked that")
    ok = run("promote", SPACES, "--to", "staging", "--version", "3", "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["checked_in_registry"] is True
    assert (
        f"run_id: {seeded.run_id(SPACES, '3')}"
        in (repo.root / f"environments/staging/{SPACES}.yaml").read_text()
    )


def test_a_name_the_search_filter_cannot_take_is_skipped_not_fatal(
    tmp_path: Path, seeded: Seeder, own_server: str
) -> None:
    """MLflow accepts `a\\b` as a model name, and one such name in `name IN (...)` used to fail
    the whole read: import (and plan) for every model. Last in this file: it adds a model."""
    for odd in ("a\\b", "new\nline"):
        seeded.model(odd, [0.5])
        seeded.stage(odd, "1", PRODUCTION)
    repo = Repo(tmp_path / "repo")
    run = make_runner(repo.root, tracking_uri=own_server)
    result = run("import", "--env", "production", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert not (repo.root / "environments/production/a\\b.yaml").exists()
    assert "a\\\\b" in result.stdout  # reported as skipped, by name
    assert "new\\nline" in result.stdout
    assert (repo.root / f"environments/production/{DOTS}.yaml").exists()
