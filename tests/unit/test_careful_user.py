"""Smaller things a careful user noticed (issue 8 §8): `validate FILE` as the pre-commit hook runs
it, a staging pin that is not yet "promoted onward", `status --detailed-exitcode`, wide names in
the status table, and plan errors reported in one run."""

from __future__ import annotations

import json

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli


def errors(stderr: str) -> list[str]:
    return [line.removeprefix("error: ") for line in stderr.splitlines()][:-1]


def test_validate_a_file_whose_environment_requires_one_not_named(repo: Repo, run: RunCli) -> None:
    repo.pin("staging", "m", 2)
    repo.write("environments/production.yaml", "requires: staging\n")
    pin = repo.pin("production", "m", 2)
    result = run("validate", str(pin))
    assert result.exit_code == 0, result.stderr
    settings = repo.root / "environments/production.yaml"
    assert run("validate", str(settings)).exit_code == 0
    repo.write("environments/production.yaml", "requires: qa\n")
    result = run("validate", str(pin))
    assert errors(result.stderr) == [
        "environments/production.yaml: requires: no environment 'qa' (have: production, staging)"
    ]


def test_validate_one_file_of_a_yaml_yml_pair(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "m", 1)
    other = repo.write("environments/production/m.yml", "model: m\nversion: 2\n")
    result = run("validate", str(other))
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        "environments/production/m.yml:1: model: 'm' is pinned twice in environment 'production' "
        "(also in environments/production/m.yaml)"
    ]


def test_staging_is_not_promoted_onward_before_production_is_applied(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m", stage=STAGING)
    repo.pin("production", "m", 2)
    repo.pin("staging", "m", 2)
    plan = run("plan")
    assert plan.stdout.splitlines()[:4] == [
        "production (Production)",
        "  ~ m: v1 → v2 (v2 → Production, archives v1)",
        "staging (Staging)",
        "  ~ m: v2 (moves on to production with production's change: not there yet)",
    ]
    pins = json.loads(run("plan", "--format", "json").stdout)["pins"]
    assert [(p["environment"], p["status"], p["promoted_onward_to"]) for p in pins] == [
        ("production", "change", None),
        ("staging", "onward_pending", "production"),
    ]
    staging_only = run("plan", "--env", "staging")
    assert "  ~ m: v2 (moves on to production with production's change: not there yet)" in (
        staging_only.stdout
    )
    status = run("status").stdout.splitlines()
    assert status[2] == "staging      m      v2      Staging: v2     NO       -"
    assert run("apply").exit_code == 0
    assert "  = m: v2 (in sync: promoted onward to production)" in run("plan").stdout
    assert run("status").stdout.splitlines()[2].split()[3:6] == ["Staging:", "none", "yes"]


def test_status_detailed_exitcode(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    repo.pin("production", "m", 1)
    assert run("status", "--detailed-exitcode").exit_code == 0
    repo.pin("production", "m", 2)
    pending = run("status", "--detailed-exitcode")
    assert pending.exit_code == 2
    assert "NO" in pending.stdout
    assert run("status").exit_code == 0  # without the option: 0 whenever the table is shown
    repo.pin("production", "ghost", 1)
    assert run("status", "--detailed-exitcode", "--model", "ghost").exit_code == 2


def test_wide_names_keep_the_status_table_aligned(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    for name in ("模型", "ab"):
        fake.create_version(name, stage=PRODUCTION)
        repo.write(f"environments/production/{name}.yaml", f"model: {name}\nversion: 1\n")
    lines = run("status").stdout.splitlines()
    assert lines == [
        "ENVIRONMENT  MODEL  PINNED  REGISTRY        IN SYNC  LAST APPLIED",
        "production   ab     v1      Production: v1  yes      -",
        "production   模型   v1      Production: v1  yes      -",
    ]


def test_plan_reports_registry_and_policy_problems_in_one_run(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m", run_id="r1")
    fake.metrics["r1"] = {"accuracy": 0.5}
    repo.write("environments/production.yaml", "gates:\n  metrics:\n    accuracy: {min: 0.9}\n")
    repo.pin("production", "m", 1)
    repo.pin("production", "ghost", 1)
    result = run("plan")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        "environments/production/ghost.yaml:1: model: registered model 'ghost' not found",
        "environments/production/m.yaml:2: version: policy: accuracy of m v1 is 0.5; gate in "
        "environments/production.yaml needs >= 0.9",
    ]
