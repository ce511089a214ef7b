"""Serving follows the pins, on real processes: sklearn models in the mlflow server, the reference
backend on 127.0.0.1 following the Production stage, promotions and a `git revert` rollback
applied with the CLI in a real git repository, and `verify` proving (or refuting) each."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.serving_backend import Backend, log_sklearn_models

pytestmark = pytest.mark.integration

StartBackend = Callable[..., Backend]


@pytest.fixture
def start_backend(tmp_path: Path, mlflow_server: str) -> Iterator[StartBackend]:
    started: list[Backend] = []

    def start(*args: str) -> Backend:
        backend = Backend(tmp_path, mlflow_server, *args)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


def serving_settings(repo: Repo, backend: Backend) -> None:
    repo.write(
        "environments/production.yaml",
        "stage: Production\n"
        "serving:\n"
        f"  url: {backend.url}/health\n"
        "  interval: 1s\n"
        "  timeout: 2m\n",
    )


def test_serving_follows_promotion_and_rollback_and_verify_proves_it(
    repo: Repo, seeder: Seeder, mlflow_server: str, start_backend: StartBackend
) -> None:
    model = seeder.name("churn")
    assert log_sklearn_models(mlflow_server, model, 3) == ["1", "2", "3"]
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    backend = start_backend("--model", model, "--stage", PRODUCTION, "--interval", "0.5")
    serving_settings(repo, backend)
    repo.pin("production", model, 1)
    repo.commit(f"pin {model} v1")
    assert run("apply").exit_code == 0

    verified = run("verify", "--format", "json")
    assert verified.exit_code == 0, verified.output + backend.output()
    (endpoint,) = json.loads(verified.stdout)["endpoints"]
    assert endpoint["served_version"] == "1"
    status, health = backend.get()
    assert status == 200
    assert health == {
        "status": "ok",
        "model": model,
        "stage": PRODUCTION,
        "version": "1",
        "run_id": seeder.run_id(model, "1"),
    }
    status, answer = backend.post("/predict", [{"x": 1.0}, {"x": 2.0}])
    assert status == 200, answer
    assert answer["version"] == "1"
    assert [round(p, 6) for p in answer["predictions"]] == [1.0, 2.0]  # v1: y = 1 * x

    # Promotion: apply --verify waits until the backend has reloaded v2.
    repo.pin("production", model, 2)
    promoted = repo.commit(f"promote {model} v2")
    applied = run("apply", "--verify")
    assert applied.exit_code == 0, applied.output + backend.output()
    assert f"ok    {model} in production: serves v2" in applied.stdout
    assert backend.post("/predict", [{"x": 1.0}])[1]["predictions"] == [pytest.approx(2.0)]

    # Rollback by reverting the merge: serving goes back to v1.
    repo.git("revert", "--no-edit", promoted)
    assert run("apply").exit_code == 0
    verified = run("verify")
    assert verified.exit_code == 0, verified.output + backend.output()
    assert f"ok    {model} in production: serves v1" in verified.stdout
    assert backend.get()[1]["version"] == "1"
    assert backend.post("/predict", [{"x": 3.0}])[1]["predictions"] == [pytest.approx(3.0)]

    # A backend that stopped reloading: verify fails naming what is pinned and what serves.
    backend.stop()
    stuck = start_backend("--model", model, "--stage", PRODUCTION, "--interval", "3600")
    serving_settings(repo, stuck)
    repo.pin("production", model, 3)
    repo.commit(f"promote {model} v3")
    assert stuck.wait_serving()["version"] == "1"
    assert run("apply").exit_code == 0
    failed = run("verify", "--timeout", "3")
    assert failed.exit_code == 1
    assert f"FAIL  {model} in production: pinned v3, serves v1 ({stuck.url}/health" in (
        failed.stdout
    )
    assert seeder.stages(model)["3"] == PRODUCTION  # the registry change stands


def test_backend_follows_an_alias_and_refuses_bad_rows(
    seeder: Seeder, mlflow_server: str, start_backend: StartBackend
) -> None:
    model = seeder.name("fraud")
    assert log_sklearn_models(mlflow_server, model, 2) == ["1", "2"]
    backend = start_backend("--model", model, "--alias", "champion", "--interval", "0.5")
    status, health = backend.wait_up()
    assert status == 503
    # "loading" until its first look at the registry, then "no version": the alias is not set.
    assert health["status"] in ("loading", "no version")
    assert health["alias"] == "champion"
    assert health["version"] is None
    assert backend.post("/predict", [{"x": 1.0}])[0] == 503
    seeder.client.set_registered_model_alias(model, "champion", "2")
    health = backend.wait_serving()
    assert health["version"] == "2"
    assert health["alias"] == "champion"
    assert "stage" not in health
    status, answer = backend.post("/predict", {"rows": [{"x": 1.0}]})
    assert status == 200
    assert answer == {"model": model, "version": "2", "predictions": [pytest.approx(2.0)]}
    status, answer = backend.post("/predict", {"nothing": 1})
    assert status == 400
    assert "rows" in answer["error"]


def test_a_version_that_cannot_load_is_named_by_apply_verify_and_a_retired_one_stops_serving(
    repo: Repo, seeder: Seeder, mlflow_server: str, start_backend: StartBackend
) -> None:
    """Issue 15 §9: the backend's `reload_error` reaches the person running `apply --verify`;
    once the stage names no version, the backend answers 503 with the reason instead of 200 and
    predictions from the version nobody pins any more."""
    model = seeder.name("retiring")
    assert log_sklearn_models(mlflow_server, model, 1) == ["1"]
    empty_run = seeder.client.create_run("0")  # logs no model: v2 cannot be loaded
    broken = seeder.client.create_model_version(
        model, source=f"{empty_run.info.artifact_uri}/model", run_id=empty_run.info.run_id
    )
    assert str(broken.version) == "2"
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    backend = start_backend("--model", model, "--stage", PRODUCTION, "--interval", "0.5")
    repo.write(
        "environments/production.yaml",
        f"stage: {PRODUCTION}\nserving:\n  url: {backend.url}/health\n  interval: 1s\n"
        "  timeout: 30s\n",
    )
    repo.pin("production", model, 1)
    repo.commit(f"pin {model} v1")
    applied = run("apply", "--verify")
    assert applied.exit_code == 0, applied.output + backend.output()

    repo.pin("production", model, 2)
    repo.commit(f"promote {model} v2")
    applied = run("apply", "--verify", "--format", "json")
    assert applied.exit_code == 1, applied.output + backend.output()
    assert seeder.stages(model)["2"] == PRODUCTION  # the registry change stands
    failed = next(x for x in applied.stderr.splitlines() if x.startswith("FAIL  "))
    # MLflow 3.17.2 says "MlflowException: No such artifact: ''" for a version without files.
    assert failed.startswith(
        f"FAIL  {model} in production: pinned v2, serves v1; backend reload_error: "
        "MlflowException: "
    ), failed
    status, health = backend.get()
    assert (status, health["version"]) == (200, "1")
    assert health["reload_error"] in failed

    # The model retired: nothing in Production any more.
    seeder.stage(model, "2", "Archived")
    deadline = time.monotonic() + 60
    while backend.get()[0] != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    status, health = backend.get()
    assert (status, health["status"], health["version"]) == (503, "no version", None)
    assert health["reload_error"] == f"{model}/{PRODUCTION} names no version"
    assert backend.post("/predict", [{"x": 1.0}]) == (
        503,
        {"error": f"{model}/{PRODUCTION} names no version"},
    )
    verified = run("verify", "--timeout", "0")
    assert verified.exit_code == 1
    assert f"HTTP 503; backend reload_error: {model}/{PRODUCTION} names no version" in (
        verified.stdout
    )


def test_apply_verify_with_a_token_ending_in_a_newline_fails_cleanly_and_never_shows_it(
    repo: Repo, seeder: Seeder, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 §4 on the real registry: the apply lands, the verification refuses the token
    (a newline, as `$(cat token-file)` keeps from `printf 'tok\\n'`) naming its variable, exit 1,
    and no part of the token anywhere (it crashed with exit 3 and printed it whole)."""
    token = "Pq7vR2xW9kT4sL8"
    monkeypatch.setenv("SERVING_TOKEN", f"{token}\n")
    model = seeder.name("token")
    seeder.model(model, [0.9, 0.9])
    seeder.stage(model, "1", PRODUCTION)
    repo.write(
        "environments/production.yaml",
        f"stage: {PRODUCTION}\nserving:\n  url: http://127.0.0.1:9/{{model}}/health\n"
        "  timeout: 1s\n  headers:\n    Authorization: Bearer ${SERVING_TOKEN}\n",
    )
    repo.pin("production", model, 2)
    repo.commit(f"promote {model} v2")
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    for args in (("apply", "--verify"), ("--traceback", "verify", "--format", "json")):
        result = run(*args)
        output = result.stdout + result.stderr
        assert result.exit_code == 1, output
        assert (
            ": serving.headers.Authorization: the environment variable SERVING_TOKEN holds a "
            "newline" in result.stderr
        )
        assert not [token[i : i + 5] for i in range(len(token) - 4) if token[i : i + 5] in output]
    assert seeder.stages(model)["2"] == PRODUCTION  # the registry change stands
