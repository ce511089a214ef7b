"""Metric gates on a real `mlflow server` (issue 15 §3), through the CLI: versions logged the
MLflow 3 way (`log_model(name=...)`, `log_metric(model_id=..., dataset=...)`, a LoggedModel with
no run) are judged by their LoggedModel's metrics per dataset, an MLflow 2 version by its run."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.pins.values import PRODUCTION
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.mlflow3_models import log_mlflow3_versions
from tests.support.proxy import RecordingProxy

pytestmark = pytest.mark.integration

SETTINGS = "environments/production.yaml"


def gate(repo: Repo, model: str, version: int, bound: str) -> str:
    repo.write(SETTINGS, f"gates:\n  metrics:\n    accuracy: {bound}\n")
    repo.pin("production", model, version)
    return f"environments/production/{model}.yaml"


def errors(stderr: str) -> list[str]:
    return [line.removeprefix("error: ") for line in stderr.splitlines()][:-1]


def test_gates_read_logged_models_per_dataset(
    repo: Repo, seeder: Seeder, mlflow_server: str, proxy: RecordingProxy
) -> None:
    model = seeder.name("mlflow3")
    made: dict[str, Any] = log_mlflow3_versions(mlflow_server, model)
    versions = made["versions"]
    # The premises, as measured: the run's own metric is the last logged (train, 0.99); the
    # LoggedModel link is only in the source; the run-less version has run_id ''.
    assert made["run_accuracy_v2"] == 0.99
    assert versions["2"]["source"] == f"models:/{made['model_v2']}"
    assert versions["3"] == {"run_id": "", "source": f"models:/{made['model_v3']}"}
    seeder.stage(model, "1", PRODUCTION)
    run = make_runner(repo.root, tracking_uri=mlflow_server)

    pin = gate(repo, model, 2, "{min: 0.9}")
    result = run("plan")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"{pin}:2: version: policy: accuracy of {model} v2 was logged on several datasets "
        f"(eval 0.8, train 0.99); gate in {SETTINGS} names none: add `dataset: <name>` to it"
    ]
    assert run("apply").exit_code == 1
    assert seeder.stages(model)["2"] == "None"

    gate(repo, model, 2, "{min: 0.9, dataset: eval}")
    assert errors(run("plan").stderr) == [
        f"{pin}:2: version: policy: accuracy of {model} v2 is 0.8 on dataset eval (its logged "
        f"model); gate in {SETTINGS} needs >= 0.9"
    ]

    gate(repo, model, 2, "{min: 0.9, dataset: train}")
    counted = make_runner(repo.root, tracking_uri=proxy.url)
    review = counted("plan", "--format", "markdown")
    assert review.exit_code == 0, review.stderr
    assert "| accuracy (train) | 0.85 | 0.99 | +0.14 | v1 run · v2 model, train |" in review.stdout
    assert "| accuracy (eval) | n/a | 0.8 | n/a | model, eval |" in review.stdout
    applied = counted("apply")
    assert applied.exit_code == 0, applied.stderr
    # Read once per command: the gate and the review (plan), the plan under the lease (apply).
    assert [p.split("?")[0] for _m, p in proxy.requests if "logged-models" in p] == [
        f"/api/2.0/mlflow/logged-models/{made['model_v2']}"
    ] * 2
    assert seeder.stages(model)["2"] == PRODUCTION

    # The run-less LoggedModel's version passes a gate its model satisfies.
    gate(repo, model, 3, "{min: 0.95}")
    assert errors(run("plan").stderr) == [
        f"{pin}:2: version: policy: accuracy of {model} v3 is 0.93 (its logged model); gate in "
        f"{SETTINGS} needs >= 0.95"
    ]
    gate(repo, model, 3, "{min: 0.9}")
    applied = run("apply")
    assert applied.exit_code == 0, applied.stderr
    assert seeder.stages(model)["3"] == PRODUCTION

    # The MLflow 2 style version reads its run, as before.
    gate(repo, model, 1, "{min: 0.9}")
    assert errors(run("plan").stderr) == [
        f"{pin}:2: version: policy: accuracy of {model} v1 is 0.85; gate in {SETTINGS} needs >= 0.9"
    ]
    gate(repo, model, 1, "{min: 0.8}")
    applied = run("apply")
    assert applied.exit_code == 0, applied.stderr
    assert seeder.stages(model)["1"] == PRODUCTION
