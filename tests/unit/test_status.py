"""`reconciler status`: one table of environment x model, pinned vs registry."""

from __future__ import annotations

import json

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli


def test_status_text_markdown_json(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("churn", stage=PRODUCTION)
    fake.create_version("churn", stage=STAGING)
    fake.create_version("fraud", stage=PRODUCTION)
    fake.create_version("fraud")
    repo.pin("production", "churn", 1)
    repo.pin("staging", "churn", 2)
    repo.pin("production", "fraud", 2)
    commit = repo.commit("pins")
    # Before any apply: nothing recorded (an apply records in-sync pins too: adoption).
    result = run("status")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "ENVIRONMENT  MODEL  PINNED  REGISTRY        IN SYNC  LAST APPLIED",
        "production   churn  v1      Production: v1  yes      -",
        "production   fraud  v2      Production: v1  NO       -",
        "staging      churn  v2      Staging: v2     yes      -",
    ]
    assert run("apply").exit_code == 0
    rows = json.loads(run("status", "--format", "json").stdout)
    fraud = next(r for r in rows if r["model"] == "fraud")
    assert fraud == {
        "environment": "production",
        "model": "fraud",
        "pinned_version": "2",
        "target": PRODUCTION,
        "registry_versions": ["2"],
        "alias_version": None,
        "in_sync": True,
        "last_applied_commit": commit,
        "workspace": None,  # the registry has no workspaces
        "state_problem": None,
        "source": None,  # no `from:`: the version is this registry's own
    }
    markdown = run("status", "--format", "markdown", "--env", "production").stdout.splitlines()
    assert markdown[0] == "| Environment | Model | Pinned | Registry | In sync | Last applied |"
    assert markdown[3] == f"| production | `fraud` | v2 | Production: v2 | ✅ | {commit[:12]} |"
    assert len(markdown) == 4


def test_status_of_a_pin_the_registry_cannot_satisfy(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    repo.pin("production", "ghost", 1)
    result = run("status")
    assert result.exit_code == 0
    assert (
        result.stdout.splitlines()[1] == "production   ghost  v1      Production: none  NO       -"
    )


def test_status_shows_where_the_alias_points_beside_the_stage(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """Serving loads models:/m@champion: a stage and an alias that disagree must both show."""
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    fake.create_version("m")
    fake.create_version("m", stage=PRODUCTION)
    fake.set_alias("m", "champion", "1")
    repo.pin("production", "m", 2)
    repo.commit("pins")
    result = run("status")
    assert result.stdout.splitlines()[1].split() == [
        "production", "m", "v2", "Production:", "v2", "+", "@champion:", "v1", "NO", "-",
    ]  # fmt: skip
    row = json.loads(run("status", "--format", "json").stdout)[0]
    assert row["registry_versions"] == ["2"]
    assert row["alias_version"] == "1"
    assert row["in_sync"] is False
