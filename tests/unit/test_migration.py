"""The stage → alias migration: add `alias:` beside the stage, then drop the stage."""

from __future__ import annotations

import json

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli


def test_stage_to_alias_in_two_steps(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    for model in ("a", "b"):
        fake.create_version(model, stage=PRODUCTION)
        fake.create_version(model, stage=STAGING)
        repo.pin("production", model, 1)
        repo.pin("staging", model, 2)
    repo.commit("pins")
    adopted = run("apply").stdout  # in sync: records the bookkeeping (adoption), moves nothing
    assert adopted.splitlines()[-1].endswith("4 already in sync; 4 recorded.")
    assert [w for w in fake.writes if w[0] in ("transition", "set_alias")] == []

    # (1) An alias beside the stage: one alias set per model, nothing else.
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    repo.commit("production also keeps @champion")
    plan = run("plan", "--format", "json", "--detailed-exitcode")
    assert plan.exit_code == 2
    changes = json.loads(plan.stdout)["changes"]
    assert [(c["kind"], c["model"], c["alias"], c["version"]) for c in changes] == [
        ("set_alias", "a", "champion", "1"),
        ("set_alias", "b", "champion", "1"),
    ]
    fake.writes.clear()
    assert run("apply").exit_code == 0
    assert [w for w in fake.writes if w[0] in ("transition", "set_alias")] == [
        ("set_alias", "a", "champion", "1"),
        ("set_alias", "b", "champion", "1"),
    ]

    # (2) The stage dropped: alias only. The stage keeps its versions, listed as unmanaged.
    repo.write("environments/production.yaml", "stage: null\nalias: champion\n")
    repo.commit("production is managed by alias only")
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    assert "  ? production: a Production v1" in plan.stdout
    assert "  ? production: b Production v1" in plan.stdout
    fake.writes.clear()
    applied = run("apply")
    assert applied.exit_code == 0
    assert "Nothing to do" in applied.stdout
    assert fake.writes == []
    assert fake.read(["a"]).models["a"].in_stage(PRODUCTION) == ["1"]

    # Import in the alias-only environment reads the alias.
    fake.create_version("c", stage=PRODUCTION)
    fake.create_version("c")
    fake.set_alias("c", "champion", "2")
    imported = run("import", "--env", "production")
    assert imported.exit_code == 0, imported.stderr
    assert "wrote environments/production/c.yaml: c v2" in imported.stdout
    assert "version: 2" in (repo.root / "environments/production/c.yaml").read_text()


def test_after_the_migration_a_version_pinned_in_both_stays_in_production(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """Right after a promotion staging and production pin the same version; with production on
    its alias only, staging must not pull that version out of the Production stage."""
    fake.create_version("m", stage=STAGING)
    fake.create_version("m", stage=PRODUCTION)
    fake.set_alias("m", "champion", "2")
    repo.write("environments/production.yaml", "stage: null\nalias: champion\n")
    repo.pin("production", "m", 2)
    repo.pin("staging", "m", 2)
    repo.commit("pins")
    plan = run("plan", "--format", "json")
    pins = {p["environment"]: p for p in json.loads(plan.stdout)["pins"]}
    assert pins["staging"]["status"] == "change"
    assert pins["staging"]["promoted_onward_to"] == "production"
    changes = json.loads(plan.stdout)["changes"]
    # v1 is archived out of Staging (promoted onward, as with stages); v2 never moves.
    assert [(c["kind"], c["version"], c["stage"]) for c in changes] == [("archive", "1", "Staging")]
    assert run("apply").exit_code == 0
    assert fake.read(["m"]).models["m"].in_stage(PRODUCTION) == ["2"]
    assert run("plan", "--detailed-exitcode").exit_code == 0
