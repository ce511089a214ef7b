"""The stage → alias migration on a real `mlflow server`, in a real git repository: add the alias
beside the stage (one alias set per model), then drop the stage (nothing moves, nothing is
archived, the stage is listed as unmanaged); `import` then reads the alias."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.proxy import RecordingProxy

pytestmark = pytest.mark.integration


def test_stage_to_alias_migration(repo: Repo, seeder: Seeder, proxy: RecordingProxy) -> None:
    first, second = seeder.name("churn"), seeder.name("fraud")
    for model in (first, second):
        seeder.model(model, [0.8, 0.9, 0.95])
        repo.pin("production", model, 2)
        repo.pin("staging", model, 3)
    repo.pin("production", second, 3)  # just promoted: staging and production pin v3
    repo.commit("pins")
    run = make_runner(repo.root, tracking_uri=proxy.url)
    models = ("--model", first, "--model", second)
    assert run("apply", *models).exit_code == 0
    assert seeder.stages(first) == {"1": "None", "2": PRODUCTION, "3": STAGING}
    assert seeder.stages(second)["3"] == PRODUCTION

    # (1) The alias beside the stage.
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    repo.commit("production also keeps @champion")
    plan = run("plan", *models, "--format", "json")
    changes = [(c["kind"], c["model"], c["version"]) for c in json.loads(plan.stdout)["changes"]]
    assert changes == [("set_alias", first, "2"), ("set_alias", second, "3")]
    proxy.clear()
    assert run("apply", *models).exit_code == 0, "apply (1)"
    assert not [w for w in proxy.writes() if "transition-stage" in w[1]]
    assert seeder.aliases(first) == {"champion": "2"}
    assert seeder.aliases(second) == {"champion": "3"}

    # (2) The stage dropped: the environment is managed by its alias only.
    repo.write("environments/production.yaml", "stage: null\nalias: champion\n")
    repo.commit("production is managed by alias only")
    plan = run("plan", *models, "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    assert f"  ? production: {first} Production v2" in plan.stdout
    assert f"  ? production: {second} Production v3" in plan.stdout
    proxy.clear()
    applied = run("apply", *models)
    assert applied.exit_code == 0
    assert "Nothing to do" in applied.stdout
    assert proxy.writes() == []
    assert seeder.stages(first) == {"1": "None", "2": PRODUCTION, "3": STAGING}
    assert seeder.stages(second)["3"] == PRODUCTION  # not pulled into Staging by its pin

    # Import in the alias-only environment reads the alias (the pins exist: unchanged).
    seeder.client.set_registered_model_alias(first, "champion", "1")
    imported = run("import", "--env", "production", *models, "--format", "json")
    assert imported.exit_code == 0, imported.stderr
    pins = {p["model"]: p for p in json.loads(imported.stdout)["pins"]}
    assert (pins[first]["version"], pins[first]["outcome"]) == ("1", "differs")
    assert (pins[second]["version"], pins[second]["outcome"]) == ("3", "unchanged")
    assert proxy.writes() == []
