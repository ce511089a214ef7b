"""Issue 8 §2-§4 against a real `mlflow server` in real git repositories: versions mean what they
say, what is applied is what is committed, policy evidence cannot be borrowed or forged."""

from __future__ import annotations

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.values import NONE_STAGE
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder

pytestmark = pytest.mark.integration


def test_an_octal_looking_version_is_refused_not_applied_as_v8(
    repo: Repo, seeder: Seeder, mlflow_server: str
) -> None:
    model = seeder.name("octal")
    seeder.model(model, [0.5] * 10)
    pin = f"environments/production/{model}.yaml"
    repo.write(pin, f"model: {model}\nversion: 010\n")
    repo.commit("pin v010")
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    result = run("apply", "--model", model)
    assert result.exit_code == 1
    assert (
        f"error: {pin}:2: version: '010' is not a model version: write 10 without leading zeros"
        in result.stderr
    )
    assert set(seeder.stages(model).values()) == {NONE_STAGE}
    repo.write(pin, f'model: {model}\nversion: "10"\n')
    repo.commit("pin v10")
    assert run("apply", "--model", model).exit_code == 0
    assert seeder.stages(model)["10"] == PRODUCTION
    assert seeder.stages(model)["8"] == NONE_STAGE


def test_a_dirty_tree_is_refused_and_allow_dirty_is_recorded(
    repo: Repo, seeder: Seeder, mlflow_server: str
) -> None:
    import json

    model = seeder.name("dirty")
    seeder.model(model, [0.5, 0.6])
    repo.pin("production", model, 1)
    head = repo.commit("pin v1")
    repo.pin("production", model, 2)  # edited, not committed
    run = make_runner(repo.root, tracking_uri=mlflow_server, commit_before_apply=False)
    result = run("apply", "--model", model)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: refusing to apply: environments/ differs from the commit checked out "
        f"({head[:12]}): environments/production/{model}.yaml (modified). Commit or discard "
        "them: what is applied is what is committed; use --allow-dirty for a local experiment. "
        "Nothing was changed\n"
    )
    assert set(seeder.stages(model).values()) == {NONE_STAGE}
    assert run("apply", "--model", model, "--allow-dirty").exit_code == 0
    assert seeder.stages(model)["2"] == PRODUCTION
    tags = seeder.client.get_model_version(model, "2").tags
    [record] = json.loads(tags["reconciler.audit.production"])
    assert (record["commit"], record["dirty"]) == (head, True)


def test_evidence_is_the_registrys_and_names_are_literal(
    repo: Repo, seeder: Seeder, mlflow_server: str
) -> None:
    import json

    star, other = seeder.name("c*d"), seeder.name("cZd")
    for name in (star, other):
        seeder.model(name, [0.5, 0.6])
    repo.write("environments/production.yaml", "requires: staging\n")
    repo.write(f"environments/staging/{other}.yaml", f"model: {other}\nversion: 1\n")
    repo.write(f"environments/staging/{star}.yaml", f"model: '{star}'\nversion: 1\n")
    first = repo.commit("staging pins")
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    assert run("apply", "--model", other).exit_code == 0  # cZd only: c*d stays unapplied
    production_pin = repo.write(
        f"environments/production/{star}.yaml", f"model: '{star}'\nversion: 1\n"
    )
    refused = run("plan", "--model", star)  # committed to staging, never applied there
    assert refused.exit_code == 1
    assert f"policy: {star} v1 was never applied to staging (no audit record" in refused.stderr
    production_pin.unlink()
    history = json.loads(run("history", star, "--format", "json").stdout)["changes"]
    assert [(c["environment"], c["applied"]) for c in history] == [("staging", False)]
    # Applied to staging from a later commit that still pins v1: the staging change counts.
    repo.write("README.md", "later\n")
    repo.commit("a later commit")
    assert run("apply", "--model", star).exit_code == 0
    history = json.loads(run("history", star, "--format", "json").stdout)["changes"]
    assert [(c["commit"], c["applied"]) for c in history] == [(first, True)]
    production_pin = repo.write(
        f"environments/production/{star}.yaml", f"model: '{star}'\nversion: 1\n"
    )
    repo.commit("production c*d v1")
    assert run("apply", "--model", star).exit_code == 0
    assert seeder.stages(star)["1"] == PRODUCTION
    assert seeder.stages(other)["1"] == "Staging"
