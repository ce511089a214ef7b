"""The stage → alias migration: add `alias:` beside the stage, then drop the stage."""

from __future__ import annotations

import json

from reconciler.registry.fake import FakeRegistry
from reconciler.state import PRODUCTION, STAGING
from tests.conftest import Repo, RunCli


def test_stage_to_alias_in_two_steps(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    for model in ("a", "b"):
        fake.create_version(model, stage=PRODUCTION)
        fake.create_version(model, stage=STAGING)
        repo.pin("production", model, 1)
        repo.pin("staging", model, 2)
    repo.commit("pins")
    assert "Nothing to do" in run("apply").stdout

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
