"""Issue 3's behaviours against a real `mlflow server` in real git repositories: compare-and-set,
--expect-plan, audit records and history, prune, promotion policy and gates."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.values import ARCHIVED, NONE_STAGE
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.proxy import RecordingProxy

pytestmark = pytest.mark.integration


def test_hand_edit_during_apply_is_skipped_as_conflicted(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy
) -> None:
    a, b = seeder.name("cas-a"), seeder.name("cas-b")
    for name in (a, b):
        seeder.model(name, [0.5, 0.6, 0.7])
        seeder.stage(name, "1", PRODUCTION)
        repo.pin("production", name, 2)
    edited: list[str] = []

    def hand_edit(method: str, path: str) -> None:
        if "transition-stage" in path and not edited:
            edited.append(path)
            seeder.stage(b, "3", PRODUCTION)  # someone in the UI, right now

    proxy.on_request = hand_edit
    run = make_runner(repo.root, tracking_uri=proxy.url)
    result = run("apply", "--format", "json", "--parallelism", "1")
    assert result.exit_code == 1
    outcomes = {r["model_name"]: r["outcome"] for r in json.loads(result.stdout)}
    assert outcomes == {a: "applied", b: "conflicted"}
    assert seeder.stages(b) == {"1": PRODUCTION, "2": NONE_STAGE, "3": PRODUCTION}
    proxy.on_request = None
    assert run("apply").exit_code == 0  # a re-run converges
    assert seeder.stages(b) == {"1": ARCHIVED, "2": PRODUCTION, "3": ARCHIVED}


def test_expect_plan_and_audit_history(
    repo: Repo, seeder: Seeder, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "merge-bot")
    model = seeder.name("audited")
    seeder.model(model, [0.8, 0.9])
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    repo.pin("production", model, 1)
    first = repo.commit("Pin v1")
    assert run("apply").exit_code == 0
    repo.pin("production", model, 2)
    second = repo.commit("Promote v2 (#12)")
    reviewed = json.loads(run("plan", "--model", model, "--format", "json").stdout)["checksum"]
    seeder.stage(model, "2", STAGING)  # the registry moves after review
    refused = run("apply", "--model", model, "--expect-plan", reviewed)
    assert refused.exit_code == 1
    assert "the plan is not the one reviewed" in refused.stderr
    current = json.loads(run("plan", "--model", model, "--format", "json").stdout)["checksum"]
    assert run("apply", "--model", model, "--expect-plan", current).exit_code == 0

    tags = seeder.client.get_model_version(model, "2").tags
    records = json.loads(tags["reconciler.audit.production"])
    assert [
        (r["action"], r["commit"], r["previous"], r["actor"], r["pull_request"]) for r in records
    ] == [("promote", second, ["1"], "merge-bot", "12")]
    history = json.loads(run("history", model, "--format", "json").stdout)
    assert [
        (c["commit"], c["from_version"], c["to_version"], c["applied"]) for c in history["changes"]
    ] == [
        (second, "1", "2", True),
        (first, None, "1", True),
    ]


def test_prune_on_a_real_registry(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    keep, drop = seeder.name("keep"), seeder.name("drop")
    for name in (keep, drop):
        seeder.model(name, [0.5])
        repo.pin("production", name, 1)
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    assert run("apply", "--model", keep, "--model", drop).exit_code == 0
    (repo.root / f"environments/production/{drop}.yaml").unlink()
    plan = run("plan", "--prune")
    assert f"  - production: {drop}: retire v1 from Production" in plan.stdout
    result = run("apply", "--prune")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert seeder.stages(drop) == {"1": ARCHIVED}
    assert seeder.stages(keep) == {"1": PRODUCTION}


def test_gates_and_order_on_a_real_registry(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    model = seeder.name("gated")
    seeder.model(model, [0.82, 0.93])
    repo.write(
        "environments/production.yaml",
        "requires: staging\ngates:\n  metrics:\n    accuracy: {min: 0.9}\n  tags: {smoke_test: passed}\n",
    )
    repo.pin("staging", model, 1)
    repo.pin("production", model, 1)
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    result = run("plan", "--model", model)
    assert result.exit_code == 1
    pin = f"environments/production/{model}.yaml"
    assert (
        f"error: {pin}:2: version: policy: accuracy of {model} v1 is 0.82; gate in environments/production.yaml needs >= 0.9"
        in result.stderr
    )
    assert f"error: {pin}:2: version: policy: {model} v1 tag smoke_test is missing" in result.stderr
    # v2 through staging, smoke-tested, then production.
    repo.pin("production", model, 1)
    (repo.root / pin).unlink()
    repo.pin("staging", model, 2)
    assert run("apply", "--model", model).exit_code == 0
    seeder.client.set_model_version_tag(model, "2", "smoke_test", "passed")
    repo.pin("production", model, 2)
    applied = run("apply", "--model", model)
    assert applied.exit_code == 0, applied.stderr
    assert seeder.stages(model)["2"] == PRODUCTION
