"""Issue 4's pieces against a real `mlflow server`: the review plan with real run metrics and UI
links, the workflow scripts fed by real CLI output, promote's registry fallback, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.state import PRODUCTION, STAGING
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.scripts import load_script

pytestmark = pytest.mark.integration


def test_review_plan_comment_and_apply_outputs(
    repo: Repo, seeder: Seeder, mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = seeder.name("reviewed")
    seeder.model(model, [0.84, 0.93])
    seeder.stage(model, "1", PRODUCTION)
    repo.write("environments/production.yaml", "gates:\n  metrics:\n    accuracy: {min: 0.9}\n")
    repo.pin("production", model, 2, confidence="0.9")
    run = make_runner(repo.root, tracking_uri=mlflow_server)

    plan = run("plan", "--model", model, "--format", "markdown")
    assert plan.exit_code == 0, plan.stderr
    assert f"#### production: `{model}` v1 → v2" in plan.stdout
    assert "| accuracy | 0.84 | 0.93 | +0.09 |" in plan.stdout
    assert f"[v2]({mlflow_server}/#/models/{model}/versions/2)" in plan.stdout
    assert "comparison confidence 0.9" in plan.stdout
    assert "Policy passed: accuracy >= 0.9" in plan.stdout
    comment = load_script("sticky_comment").render(plan.stdout)
    assert comment.startswith("<!-- reconciler-plan -->\n### Registry plan: changes pending")

    applied = run("apply", "--model", model, "--format", "json")
    assert applied.exit_code == 0, applied.stderr
    records = tmp_path / "apply.json"
    records.write_text(applied.stdout)
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert load_script("apply_outputs").main([str(records)]) == 0
    assert out.read_text() == f'changed_models=["{model}"]\nchanged=true\n'

    status = json.loads(run("status", "--model", model, "--format", "json").stdout)
    assert [(r["environment"], r["registry_versions"], r["in_sync"]) for r in status] == [
        ("production", ["2"], True)
    ]


def test_promote_falls_back_to_the_registry(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    model = seeder.name("fallback")
    seeder.model(model, [0.5, 0.6, 0.7])
    seeder.stage(model, "2", STAGING)
    seeder.stage(model, "3", STAGING)
    repo.pin("production", model, 1)
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    record = json.loads(run("promote", model, "--to", "production", "--format", "json").stdout)
    assert (record["new_version"], record["archived_version"], record["version_from"]) == (
        "3",
        "1",
        "latest Staging version in the registry",
    )
    assert "version: 3" in (repo.root / f"environments/production/{model}.yaml").read_text()
