"""Adoption on the first apply after `reconciler import` (issue 9), end to end on a real server.

An apply that finds a pin in sync with its bookkeeping missing records the applied commit,
ownership and an `adopt` audit record (api/records), moving nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.records import audit
from reconciler.records.bookkeeping import applied_commit, audit_tag
from reconciler.records.bookkeeping import owner as owner_of
from reconciler.registry.mlflow_registry import MlflowRegistry
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.integration.test_import import ALIASED, DOTS, SPACES, UNICODE, seed_mix
from tests.support.proxy import RecordingProxy
from tests.support.server import start_or_fail, stop_server

pytestmark = pytest.mark.integration

ADOPTED = [
    ("production", SPACES, "2"),
    ("production", DOTS, "1"),
    ("staging", SPACES, "3"),
    ("staging", UNICODE, "1"),
    ("edge", ALIASED, "2"),
]


@pytest.fixture(scope="module")
def adoption_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_or_fail(tmp_path_factory.mktemp("adoption-server"))
    try:
        yield url
    finally:
        stop_server(process)


def test_import_commit_apply_adopts(tmp_path: Path, adoption_server: str) -> None:
    seeder = Seeder(adoption_server)
    seed_mix(seeder, doubled=False)  # no drift: adoption alone must write no stage at all
    proxy = RecordingProxy(adoption_server)
    try:
        _adopt_and_prune(tmp_path, seeder, proxy)
    finally:
        proxy.close()


def _adopt_and_prune(tmp_path: Path, seeder: Seeder, proxy: RecordingProxy) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("environments/edge.yaml", "stage: null\nalias: edge\n")
    run = make_runner(repo.root, tracking_uri=proxy.url)
    assert run("import").exit_code == 0
    head = repo.commit("Adopt the registry")
    owner = f"git:{head}"  # the first commit is the repository's identity

    # The first apply takes ownership without moving anything.
    proxy.clear()
    applied = run("apply", "--format", "json")
    assert applied.exit_code == 0, applied.stderr
    moves = [w for w in proxy.writes() if "transition-stage" in w[1] or "/alias" in w[1]]
    assert moves == []
    for environment, model, version in ADOPTED:
        registered = MlflowRegistry(seeder.client.tracking_uri).read_model(model)
        assert applied_commit(registered, environment) == head, (environment, model)
        assert owner_of(registered, environment) == owner, (environment, model)
        tags = seeder.client.get_model_version(model, version).tags
        records = audit.parse(tags.get(audit_tag(environment)))
        assert [(r.action, r.commit) for r in records] == [("adopt", head)], (environment, model)
    status = json.loads(run("status", "--format", "json").stdout)
    assert {row["last_applied_commit"] for row in status} == {head}

    # The apply after that writes nothing at all.
    proxy.clear()
    again = run("apply")
    assert again.exit_code == 0, again.stderr
    assert proxy.writes() == []

    # An adopted model is retired like any other when its pin goes.
    (repo.root / f"environments/production/{DOTS}.yaml").unlink()
    repo.commit(f"Retire {DOTS} from production")
    pruned = run("apply", "--prune")
    assert pruned.exit_code == 0, pruned.stdout + pruned.stderr
    assert seeder.stages(DOTS) == {"1": ARCHIVED}
    assert seeder.stages(SPACES)["2"] == PRODUCTION
