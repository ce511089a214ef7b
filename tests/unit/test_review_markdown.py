"""Golden files: the markdown plan a reviewer reads in the pull request.

Regenerate after an intended change with `UPDATE_GOLDEN=1 scripts/test -k golden`, then read
the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.planning.review import ui_base, version_link
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, make_runner

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
NOV_20 = 1_795_168_800_000  # 2026-11-20 10:00 UTC, in ms


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
def registry() -> FakeRegistry:
    fake = FakeRegistry()
    for i, (accuracy, latency) in enumerate(((0.86, 41.0), (0.91, 38.5), (0.79, 30.0)), start=1):
        fake.create_version(
            "churn-model",
            stage={1: PRODUCTION, 2: STAGING}.get(i, "None"),
            run_id=f"run{i}",
            created=NOV_20 + i * 3_600_000,
            creator=f"trainer-{i}",
        )
        fake.metrics[f"run{i}"] = {
            "accuracy": accuracy,
            "latency_ms": latency,
            "f1": accuracy - 0.1,
        }
    return fake


def run_plan(repo: Repo, registry: FakeRegistry) -> str:
    run = make_runner(repo.root, registry, tracking_uri="https://bot:s3cret@mlflow.example.com/")
    result = run("plan", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_golden_promotion(repo: Repo, registry: FakeRegistry) -> None:
    repo.write(
        "environments/production.yaml",
        "stage: Production\nalias: champion\ngates:\n  metrics:\n    accuracy: {min: 0.9}\n",
    )
    repo.write(
        "environments/production/churn-model.yaml",
        "model: churn-model\nversion: 2\nconfidence: 0.87\nnote: recall +4% on the March holdout\n",
    )
    repo.pin("staging", "churn-model", 3)
    text = run_plan(repo, registry)
    assert "s3cret" not in text
    check_golden("plan_promotion.md", text)


def test_golden_rollback(repo: Repo, registry: FakeRegistry) -> None:
    registry.transition_stage("churn-model", "2", PRODUCTION, archive_existing=True)
    repo.pin("production", "churn-model", 1)
    check_golden("plan_rollback.md", run_plan(repo, registry))


def test_ui_links_never_carry_credentials() -> None:
    assert (
        ui_base("https://user:pw@mlflow.example.com:8443/mlflow/")
        == "https://mlflow.example.com:8443/mlflow"
    )
    assert ui_base("databricks") is None
    assert ui_base("sqlite:///mlflow.db") is None
    assert version_link("http://h", "a b/c", "3") == "http://h/#/models/a%20b%2Fc/versions/3"
