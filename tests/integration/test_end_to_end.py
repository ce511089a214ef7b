"""End to end: the CLI against a real `mlflow server`, in a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.values import ARCHIVED, NONE_STAGE
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.proxy import RecordingProxy
from tests.support.server import free_port

pytestmark = pytest.mark.integration


def cli(repo: Repo, uri: str):  # type: ignore[no-untyped-def]
    return make_runner(repo.root, tracking_uri=uri)


def test_promote_reapply_drift_and_revert(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy
) -> None:
    model = seeder.name("churn-model")
    seeder.model(model, [0.81, 0.86, 0.91])
    run = cli(repo, proxy.url)

    # First apply: production v1, staging v2.
    repo.pin("production", model, 1)
    repo.pin("staging", model, 2)
    repo.commit("pin churn-model")
    plan = run("plan", "--model", model, "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stderr
    assert f"  ~ {model}: none → v1 (v1 → Production)" in plan.stdout
    assert proxy.writes() == []  # plan never writes
    applied = run("apply", "--model", model)
    assert applied.exit_code == 0, applied.stderr
    assert seeder.stages(model) == {"1": PRODUCTION, "2": STAGING, "3": NONE_STAGE}

    # Idempotent: a second apply sends no write at all.
    proxy.clear()
    again = run("apply", "--model", model)
    assert again.exit_code == 0
    assert "Nothing to do" in again.stdout
    assert proxy.writes() == []
    assert len(proxy.requests) > 0  # it did read

    # Promotion in a commit: production v2, staging v3.
    repo.pin("production", model, 2)
    repo.pin("staging", model, 3)
    repo.commit("promote churn-model v2 to production")
    plan = run("plan", "--model", model)
    assert f"  ~ {model}: v1 → v2 (v2 → Production, archives v1)" in plan.stdout
    assert f"  ~ {model}: v2 → v3 (v3 → Staging)" in plan.stdout
    proxy.clear()
    records = json.loads(run("apply", "--model", model, "--format", "json").stdout)
    assert [
        (r["environment"], r["new_version"], r["archived_version"], r["promoted"]) for r in records
    ] == [
        ("production", "2", "1", True),
        ("staging", "3", None, True),
    ]
    assert seeder.stages(model) == {"1": ARCHIVED, "2": PRODUCTION, "3": STAGING}
    transitions = [w for w in proxy.writes() if "transition-stage" in w[1]]
    assert len(transitions) == 2  # one call per change: archive-and-transition together

    # Drift by hand: someone pushes v1 back into Production from the UI without archiving.
    seeder.stage(model, "1", PRODUCTION)
    drift = run("plan", "--model", model, "--detailed-exitcode")
    assert drift.exit_code == 2
    assert f"  ~ {model}: v1, v2 → v2 (archive v1 (extra in Production))" in drift.stdout
    assert run("apply", "--model", model).exit_code == 0
    assert seeder.stages(model) == {"1": ARCHIVED, "2": PRODUCTION, "3": STAGING}

    # Rollback is `git revert`: the old version comes back, the bad one is archived.
    repo.git("revert", "--no-edit", "HEAD")
    rollback = run("plan", "--model", model)
    assert f"  ~ {model}: v2 → v1 ROLLBACK (v1 → Production, archives v2)" in rollback.stdout
    assert run("apply", "--model", model).exit_code == 0
    assert seeder.stages(model) == {"1": PRODUCTION, "2": STAGING, "3": ARCHIVED}
    assert run("plan", "--model", model, "--detailed-exitcode").exit_code == 0


def test_same_version_in_both_environments(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    model = seeder.name("fraud")
    seeder.model(model, [0.7, 0.9])
    seeder.stage(model, "1", PRODUCTION)
    seeder.stage(model, "2", STAGING)
    repo.pin("production", model, 2)
    repo.pin("staging", model, 2)
    run = cli(repo, mlflow_server)
    assert run("apply", "--model", model).exit_code == 0
    assert seeder.stages(model) == {"1": ARCHIVED, "2": PRODUCTION}
    plan = run("plan", "--model", model, "--detailed-exitcode")
    assert plan.exit_code == 0
    assert f"  = {model}: v2 (in sync: promoted onward to production)" in plan.stdout


def test_aliases_on_a_real_registry(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    model = seeder.name("ranker")
    seeder.model(model, [0.7, 0.9])
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    repo.write("environments/shadow.yaml", "stage: null\nalias: shadow\n")
    repo.pin("production", model, 1)
    repo.pin("shadow", model, 2)
    run = cli(repo, mlflow_server)
    assert run("apply", "--model", model).exit_code == 0
    assert seeder.aliases(model) == {"champion": "1", "shadow": "2"}
    assert seeder.stages(model) == {"1": PRODUCTION, "2": NONE_STAGE}
    seeder.client.set_registered_model_alias(model, "champion", "2")  # moved by hand
    assert run("apply", "--model", model).exit_code == 0
    assert seeder.aliases(model)["champion"] == "1"


def test_bad_pin_leaves_registry_untouched(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy
) -> None:
    model = seeder.name("scorer")
    seeder.model(model, [0.7, 0.9])
    seeder.stage(model, "1", PRODUCTION)
    repo.pin("production", model, 2)  # a valid change...
    repo.write("environments/staging/typo.yaml", "model: typo\nversoin: 2\n")  # ...and a bad file
    result = cli(repo, proxy.url)("apply")
    assert result.exit_code == 1
    assert "environments/staging/typo.yaml:1: version: required key is missing" in result.stderr
    assert "environments/staging/typo.yaml:2: versoin: unknown key" in result.stderr
    assert proxy.requests == []  # refused before even reading the registry
    assert seeder.stages(model) == {"1": PRODUCTION, "2": NONE_STAGE}

    # A pin the registry cannot satisfy: planned, refused, nothing written.
    (repo.root / "environments/staging/typo.yaml").unlink()
    repo.pin("staging", model, 9)
    result = cli(repo, proxy.url)("apply")
    assert result.exit_code == 1
    assert (
        f"environments/staging/{model}.yaml:2: version: {model} v9 not found in the registry (latest is v2)"
        in result.stderr
    )
    assert proxy.writes() == []
    assert seeder.stages(model) == {"1": PRODUCTION, "2": NONE_STAGE}


def test_unreachable_registry_is_one_line_without_credentials(repo: Repo) -> None:
    repo.pin("production", "m", 1)
    port = free_port()
    uri = f"http://deploy-bot:s3cret-Pa55@127.0.0.1:{port}"
    started = time.monotonic()
    result = cli(repo, uri)("plan")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        result.stderr
        == f"error: cannot reach the registry at http://***@127.0.0.1:{port}: connection refused\n"
    )
    assert "s3cret" not in result.stderr
    assert elapsed < 60, f"took {elapsed:.0f}s: retry defaults are not applied"


def test_console_script_end_to_end(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    """The installed `reconciler` command, run from inside the repository (git root discovery)."""
    model = seeder.name("console")
    seeder.model(model, [0.5])
    repo.pin("production", model, 1)
    repo.commit("pin")
    (repo.root / "environments/production/sub").mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    command = [str(Path(sys.executable).parent / "reconciler"), "apply", "--model", model]

    def apply() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=repo.root / "environments",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = apply()
    assert done.returncode == 1  # the stray folder is reported...
    assert "environments/production/sub: folders inside an environment are not read" in done.stderr
    (repo.root / "environments/production/sub").rmdir()
    done = apply()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no FutureWarning about stages, no MLflow logging
    assert seeder.stages(model) == {"1": PRODUCTION}


def test_older_clone_cannot_roll_back_a_newer_apply(
    repo: Repo, seeder: Seeder, mlflow_server: str
) -> None:
    model = seeder.name("fenced")
    seeder.model(model, [0.7, 0.8, 0.9])
    repo.pin("production", model, 2)
    older = repo.commit("pin v2")
    repo.pin("production", model, 3)
    newer = repo.commit("pin v3")
    old_clone = repo.root.parent / "old-clone"
    subprocess.run(["git", "clone", "-q", str(repo.root), str(old_clone)], check=True)
    subprocess.run(["git", "checkout", "-q", older], cwd=old_clone, check=True)

    assert cli(repo, mlflow_server)("apply", "--model", model).exit_code == 0
    assert seeder.stages(model) == {"1": NONE_STAGE, "2": NONE_STAGE, "3": PRODUCTION}
    old_repo = Repo.__new__(Repo)
    old_repo.root = old_clone
    refused = cli(old_repo, mlflow_server)("apply", "--model", model)
    assert refused.exit_code == 4
    assert f"refusing to apply commit {older[:12]} to production" in refused.stderr
    assert f"{model} was last applied there from commit {newer[:12]}" in refused.stderr
    assert seeder.stages(model) == {"1": NONE_STAGE, "2": NONE_STAGE, "3": PRODUCTION}


def test_prune_finds_ownership_its_audit_record_completed_on_an_older_version(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy
) -> None:
    """An apply's records are completed by the audit record it writes on the version it put in
    place (no release write). For a model no longer pinned the registry lists only the latest
    version per stage: v1 with the alias is not among them, and prune must still see that this
    repository owns it."""
    model = seeder.name("shadowed")
    seeder.model(model, [0.8, 0.9])
    repo.write("environments/shadow.yaml", "stage: null\nalias: shadow\n")
    repo.pin("shadow", model, 1)
    repo.commit("shadow v1")
    run = cli(repo, proxy.url)
    assert run("apply", "--model", model).exit_code == 0
    assert seeder.client.get_registered_model(model).aliases == {"shadow": "1"}
    (repo.root / "environments" / "shadow" / f"{model}.yaml").unlink()
    repo.commit("retire it")
    plan = run("plan")
    assert f"  - shadow: {model}: " in plan.stdout, plan.stdout  # listed for retirement
    pruned = run("apply", "--prune", "--force")
    assert pruned.exit_code == 0, pruned.stdout + pruned.stderr
    assert seeder.client.get_registered_model(model).aliases == {}
