"""Compare-and-set: each write re-reads what it changes and skips it if someone else moved it;
`apply --expect-plan` applies only the plan that was reviewed."""

from __future__ import annotations

import json

from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ARCHIVED, ModelVersion
from tests.conftest import Repo, RunCli, make_runner


class HandEditDuringApply(FakeRegistry):
    """Someone pushes a:v3 into Production from the UI just before our first write."""

    def read_versions(self, model: str) -> dict[str, ModelVersion]:
        # The re-read just before a stage write.
        if not getattr(self, "edited", False):
            self.edited = True
            self.force_stage("a", "3", PRODUCTION)
        return super().read_versions(model)


def stages(fake: FakeRegistry, model: str) -> dict[str, str]:
    return {v: mv.stage for v, mv in fake.read([model]).models[model].versions.items()}


def test_a_change_someone_else_moved_is_skipped_and_a_rerun_converges(repo: Repo) -> None:
    registry = HandEditDuringApply()
    for model in ("a", "b"):
        registry.create_version(model, stage=PRODUCTION)
        registry.create_version(model)
        registry.create_version(model)
        repo.pin("production", model, 2)
    run = make_runner(repo.root, registry)
    result = run("apply", "--format", "json")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert [(r["model_name"], r["outcome"]) for r in records] == [
        ("a", "conflicted"),
        ("b", "applied"),
    ]
    assert stages(registry, "a") == {"1": PRODUCTION, "2": "None", "3": PRODUCTION}  # untouched
    assert stages(registry, "b") == {"1": ARCHIVED, "2": PRODUCTION, "3": "None"}
    again = run("apply")
    assert again.exit_code == 0, again.stdout
    assert stages(registry, "a") == {"1": ARCHIVED, "2": PRODUCTION, "3": ARCHIVED}


def test_conflict_report_in_text(repo: Repo) -> None:
    registry = HandEditDuringApply()
    for _ in range(3):
        registry.create_version("a")
    registry.force_stage("a", "1", PRODUCTION)
    repo.pin("production", "a", 2)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "! production: a v2 → Production, archives v1: SKIPPED, the registry changed since the "
        "plan: a Production holds v1, v3, the plan expected v1",
        "Apply: 0 applied, 0 failed, 1 conflicted, 0 not attempted; 0 already in sync.",
    ]


def test_expect_plan_applies_only_the_reviewed_plan(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    fake.create_version("m")
    repo.pin("production", "m", 2)
    reviewed = json.loads(run("plan", "--format", "json").stdout)["checksum"]
    # Between review and merge someone moves v3 into Production: the plan is no longer the same.
    fake.force_stage("m", "3", PRODUCTION)
    refused = run("apply", "--expect-plan", reviewed)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        f"error: the plan is not the one reviewed (--expect-plan {reviewed[:12]}…, now "
    )
    assert refused.stderr.endswith("Run `reconciler plan` again; nothing was changed\n")
    assert [w for w in fake.writes if w[0] == "transition"] == []
    current = json.loads(run("plan", "--format", "json").stdout)["checksum"]
    assert current != reviewed
    applied = run("apply", "--expect-plan", current)
    assert applied.exit_code == 0, applied.stderr
    assert stages(fake, "m") == {"1": ARCHIVED, "2": PRODUCTION, "3": ARCHIVED}


def test_plan_checksum_matches_between_text_and_json(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m")
    repo.pin("production", "m", 1)
    checksum = json.loads(run("plan", "--format", "json").stdout)["checksum"]
    assert f"Checksum: {checksum}" in run("plan").stdout
    assert f"Checksum `{checksum}`" in run("plan", "--format", "markdown").stdout


def test_an_apply_limited_to_one_environment_plans_only_what_it_writes(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    # Production (out of scope) would take v2 out of Staging first; staging alone must not
    # expect that, or its own write would look like someone else's change.
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m", stage="Staging")
    fake.create_version("m")
    repo.pin("production", "m", 2)
    repo.pin("staging", "m", 3)
    staged = run("apply", "--env", "staging")
    assert staged.exit_code == 0, staged.stdout
    assert stages(fake, "m") == {"1": PRODUCTION, "2": ARCHIVED, "3": "Staging"}
    assert run("apply").exit_code == 0
    assert stages(fake, "m") == {"1": ARCHIVED, "2": PRODUCTION, "3": "Staging"}
