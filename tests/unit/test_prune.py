"""Prune: a removed pin retires the model from that environment, safely."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reconciler.gitrepo import repository_id
from reconciler.pins.values import PRODUCTION
from reconciler.records.bookkeeping import managed_tag
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, RunCli, recorded_owner


def stages(fake: FakeRegistry, model: str) -> dict[str, str]:
    return {v: mv.stage for v, mv in fake.read([model]).models[model].versions.items()}


@pytest.fixture
def managed(repo: Repo, run: RunCli, fake: FakeRegistry) -> FakeRegistry:
    """Models a, b, c applied to production (v1) with the champion alias; legacy is not ours."""
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    for model in ("a", "b", "c"):
        fake.create_version(model)
        repo.pin("production", model, 1)
    fake.create_version("legacy", stage=PRODUCTION)
    assert run("apply").exit_code == 0
    owner = repository_id(repo.root)
    for model in ("a", "b", "c"):
        assert recorded_owner(fake, model, "production") == owner
    return fake


def test_removed_pin_is_shown_but_not_retired_without_prune(
    repo: Repo, run: RunCli, managed: FakeRegistry
) -> None:
    (repo.root / "environments/production/c.yaml").unlink()
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 0  # nothing that apply would do without --prune
    assert "retire (pin removed from an environment reconciler managed it in)" in plan.stdout
    assert (
        "  - production: c: retire v1 from Production; remove @champion (was v1) [needs --prune, or prune: true in its settings]"
        in plan.stdout
    )
    assert run("apply").exit_code == 0
    assert stages(managed, "c") == {"1": PRODUCTION}


def test_prune_retires_only_what_reconciler_managed(
    repo: Repo, run: RunCli, managed: FakeRegistry
) -> None:
    (repo.root / "environments/production/c.yaml").unlink()
    plan = run("plan", "--prune", "--detailed-exitcode")
    assert plan.exit_code == 2
    assert "1 retirement" in plan.stdout
    result = run("apply", "--prune", "--format", "json")
    assert result.exit_code == 0, result.stderr
    retired = [r for r in json.loads(result.stdout) if r["retired"]]
    assert [(r["model_name"], r["archived_version"], r["outcome"]) for r in retired] == [
        ("c", "1", "applied")
    ]
    assert stages(managed, "c") == {"1": ARCHIVED}  # archived, never deleted
    assert "champion" not in managed.read(["c"]).models["c"].aliases
    assert recorded_owner(managed, "c", "production") is None
    assert stages(managed, "legacy") == {"1": PRODUCTION}  # never ours: untouched
    again = run("plan", "--prune", "--detailed-exitcode")
    assert again.exit_code == 0
    assert "retire" not in again.stdout


def test_prune_setting_in_the_environment(repo: Repo, run: RunCli, managed: FakeRegistry) -> None:
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\nprune: true\n")
    (repo.root / "environments/production/b.yaml").unlink()
    assert run("apply").exit_code == 0
    assert stages(managed, "b") == {"1": ARCHIVED}


def test_prune_that_would_empty_an_environment_needs_force(
    repo: Repo, run: RunCli, managed: FakeRegistry
) -> None:
    for model in ("a", "b", "c"):
        (repo.root / f"environments/production/{model}.yaml").unlink()
    (repo.root / "environments/staging").mkdir(parents=True)
    repo.pin("staging", "a", 1)
    result = run("apply", "--prune")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: refusing to retire every model from production (it would have no pins left): "
        "a, b, c; use --force if that is intended\n"
    )
    assert stages(managed, "a")["1"] == PRODUCTION
    forced = run("apply", "--prune", "--force")
    assert forced.exit_code == 0, forced.stdout + forced.stderr
    assert stages(managed, "b") == {"1": ARCHIVED}


def test_prune_over_the_limit_needs_force(repo: Repo, run: RunCli, managed: FakeRegistry) -> None:
    repo.write(
        "environments/production.yaml", "stage: Production\nalias: champion\nmax_retire: 1\n"
    )
    managed.create_version("d")
    repo.pin("production", "d", 1)
    assert run("apply").exit_code == 0
    for model in ("a", "b"):
        (repo.root / f"environments/production/{model}.yaml").unlink()
    result = run("apply", "--prune")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: refusing to retire 2 models from production, more than its limit of 1 "
        "(max_retire): a, b; use --force if that is intended\n"
    )
    assert stages(managed, "a")["1"] == PRODUCTION


def test_models_another_repository_manages_are_never_retired(
    repo: Repo, run: RunCli, managed: FakeRegistry
) -> None:
    # Another repository applied "other" to production against the same registry.
    managed.create_version("other", stage=PRODUCTION)
    managed.set_model_tag("other", managed_tag("production"), "git:0123456789abcdef")
    (repo.root / "environments/production/c.yaml").unlink()
    plan = run("plan", "--prune")
    assert "production: c: retire v1" in plan.stdout
    assert "other" not in plan.stdout.split("unmanaged")[0]
    assert run("apply", "--prune").exit_code == 0
    assert stages(managed, "other") == {"1": PRODUCTION}


def test_repository_identity_is_shared_by_clones(repo: Repo, tmp_path: Path) -> None:
    repo.pin("production", "m", 1)
    first = repo.commit("first")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.root), str(clone)], check=True)
    assert repository_id(repo.root) == repository_id(clone) == f"git:{first}"


def test_a_default_environment_whose_last_pin_went_still_lists_its_models(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """staging needs no settings file: its folder is the environment. Removing its last pin
    removes the folder (git keeps no empty folders); what this repository put in Staging is
    still listed for retirement, and retired only with --prune and --force (it empties it)."""
    for model in ("a", "b"):
        fake.create_version(model)
        fake.create_version(model)
        repo.pin("production", model, 1)
        repo.pin("staging", model, 2)
    assert run("apply").exit_code == 0
    for model in ("a", "b"):
        (repo.root / f"environments/staging/{model}.yaml").unlink()
    (repo.root / "environments/staging").rmdir()
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert (
        "  - staging: a: retire v2 from Staging [needs --prune, or prune: true in its settings]"
        in plan.stdout
    )
    assert "  - staging: b: retire v2 from Staging" in plan.stdout
    refused = run("apply", "--prune")
    assert refused.exit_code == 1
    assert "refusing to retire every model from staging" in refused.stderr
    assert stages(fake, "a") == {"1": PRODUCTION, "2": "Staging"}
    assert run("apply", "--prune", "--force").exit_code == 0
    assert stages(fake, "a") == {"1": PRODUCTION, "2": ARCHIVED}
    assert recorded_owner(fake, "a", "staging") is None
    assert "retire" not in run("plan").stdout


def test_plan_and_apply_for_one_model_whose_pin_was_removed(
    repo: Repo, run: RunCli, managed: FakeRegistry
) -> None:
    """`--model` names a model by its retirement too (issue 15 §9): its removed pin is what the
    review is about."""
    (repo.root / "environments/production/c.yaml").unlink()
    preview = run("plan", "--model", "c", "--detailed-exitcode")
    assert preview.exit_code == 0, preview.stderr  # not retired without --prune
    assert (
        "  - production: c: retire v1 from Production; remove @champion (was v1) [needs --prune, "
        "or prune: true in its settings]" in preview.stdout
    )
    assert "production: a" not in preview.stdout  # only the model asked for
    document = json.loads(run("plan", "--model", "c", "--prune", "--format", "json").stdout)
    assert [(r["model"], r["enabled"]) for r in document["retirements"]] == [("c", True)]
    assert document["pins"] == []
    result = run("apply", "--model", "c", "--prune")
    assert result.exit_code == 0, result.stderr
    assert stages(managed, "c") == {"1": ARCHIVED}
    assert stages(managed, "a") == {"1": PRODUCTION}
    # Retired: nothing names it any more.
    gone = run("plan", "--model", "c")
    assert gone.exit_code == 1
    assert gone.stderr == (
        "error: --model 'c': no pin names this model, and this repository manages it nowhere in scope "
        "(nothing to retire)\n"
    )
    assert run("plan", "--model", "legacy").exit_code == 1  # not ours: never retired
