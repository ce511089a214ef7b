"""Issue 17's loop across two real registries, through the CLI: staging in the dev registry
(`mlflow_server`, the command's), production in its own (`prod_server`, artifacts proxied),
named by `registry:` in its settings; production's pins take staging's versions (`from:`).
A pull request's plan, the merge's applies in promotion order with `--verify` against a real
serving backend loading `models:/<name>@champion` from the prod registry, a re-apply, a second
promotion, and the revert that rolls back without copying."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import Repo, make_runner
from tests.support.copy_models import log_models, predictions
from tests.support.serving_backend import Backend

pytestmark = pytest.mark.integration


def _prod_versions(uri: str, name: str) -> dict[str, str]:
    """Version → the source version it copies (every version in prod is a copy)."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {
        str(mv.version): mv.tags.get("reconciler.copy.source_version", "")
        for mv in client.search_model_versions(f"name = '{name}'")
    }


def _champion(uri: str, name: str) -> str:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return str(client.get_model_version_by_alias(name, "champion").version)


def test_promotion_across_registries_pr_merge_verify_revert(
    repo: Repo,
    mlflow_server: str,
    prod_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"churn-{uuid.uuid4().hex[:8]}"
    log_models(mlflow_server, name)  # v1 a run's folder, v2 a LoggedModel, v3 runs:/
    monkeypatch.setenv("PROD_MLFLOW_URI", prod_server)
    backend = Backend(tmp_path, prod_server, "--model", name, "--alias", "champion")
    try:
        repo.write(
            "environments/production.yaml",
            "stage: Production\nalias: champion\nrequires: staging\n"
            "registry:\n  tracking_uri: ${PROD_MLFLOW_URI}\n"
            f"serving:\n  url: {backend.url}/health\n  interval: 1s\n  timeout: 2m\n",
        )
        repo.pin("staging", name, 1)
        repo.commit(f"Pin {name} v1 in staging")
        run = make_runner(repo.root, tracking_uri=mlflow_server)
        assert run("apply", "--env", "staging").exit_code == 0

        # The pull request: production takes staging's v1. Its review shows the copy as its
        # own step, with the size, and both registries.
        repo.pin("production", name, 1, **{"from": "staging"})
        repo.commit(f"Promote {name} v1 to production")
        review = run("plan", "--format", "markdown")
        assert review.exit_code == 0, review.output
        assert f"| production | `{prod_server}` |" in review.stdout
        assert "copy of staging v1" in review.stdout
        assert f"production: {name}: staging v1 from {mlflow_server} into {prod_server}" in (
            review.stdout
        )

        # The merge: apply in promotion order (reconcile.yml), production copying first.
        assert run("apply", "--env", "staging").exit_code == 0
        applied = run("apply", "--env", "production", "--verify")
        assert applied.exit_code == 0, applied.output + backend.output()
        assert "copied staging v1 into production's registry as v1" in applied.output
        assert f"ok    {name} in production: serves v1" in applied.stdout
        assert _prod_versions(prod_server, name) == {"1": "1"}
        assert _champion(prod_server, name) == "1"
        served = predictions(
            [(prod_server, f"models:/{name}@champion"), (mlflow_server, f"models:/{name}/1")]
        )
        first, second = served.values()
        assert first == second  # the copy predicts as the source version does

        # A re-apply writes nothing.
        again = run("apply")
        assert again.exit_code == 0, again.output
        assert "Nothing to do" in again.output
        assert _prod_versions(prod_server, name) == {"1": "1"}

        # The next promotion: v2 (a LoggedModel) through staging, then production.
        repo.pin("staging", name, 2)
        repo.commit(f"Promote {name} v2 to staging")
        assert run("apply", "--env", "staging").exit_code == 0
        repo.pin("production", name, 2, **{"from": "staging"})
        promotion = repo.commit(f"Promote {name} v2 to production")
        promoted = run("apply", "--env", "production", "--verify")
        assert promoted.exit_code == 0, promoted.output + backend.output()
        assert _prod_versions(prod_server, name) == {"1": "1", "2": "2"}
        assert _champion(prod_server, name) == "2"

        # The rollback: revert the merge; the earlier copy serves again, nothing is copied.
        repo.git("revert", "--no-edit", promotion)
        rolled = run("apply", "--env", "production", "--verify")
        assert rolled.exit_code == 0, rolled.output + backend.output()
        assert "copied" not in rolled.output
        assert f"ok    {name} in production: serves v1" in rolled.stdout
        assert _prod_versions(prod_server, name) == {"1": "1", "2": "2"}
        assert _champion(prod_server, name) == "1"

        history = run("history", name, "--env", "production", "--format", "json")
        changes = json.loads(history.stdout)["changes"]
        assert [(c["to_version"], c["applied"]) for c in changes] == [
            ("1", True),
            ("2", True),
            ("1", True),
        ]
        status = run("status", "--env", "production")
        assert "v1 (staging v1)" in status.stdout
    finally:
        backend.stop()
