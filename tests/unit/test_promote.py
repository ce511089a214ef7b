"""`reconciler promote`: edits or creates the pin, keeping comments and layout."""

from __future__ import annotations

import json

from reconciler.registry.fake import FakeRegistry
from reconciler.state import STAGING
from tests.conftest import Repo, RunCli

COMMENTED = """# yaml-language-server: $schema=../../schemas/pin.schema.json
# Owned by the churn team.
model: churn-model
version: 6   # the March model

note: keep an eye on recall
"""


def test_promote_from_the_previous_environment_keeps_the_layout(repo: Repo, run: RunCli) -> None:
    repo.write("environments/production/churn-model.yaml", COMMENTED)
    repo.pin("staging", "churn-model", 15)
    result = run("promote", "churn-model", "--to", "production")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "pinned churn-model v15 in production (was v6): environments/production/churn-model.yaml; "
        "version from pinned in staging\n"
    )
    assert (
        repo.root / "environments/production/churn-model.yaml"
    ).read_text() == COMMENTED.replace(
        "version: 6   # the March model", "version: 15   # the March model"
    )


def test_promote_json_record_and_already_promoted(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "m", 3)
    record = json.loads(
        run("promote", "m", "--to", "production", "--version", "4", "--format", "json").stdout
    )
    assert {
        k: record[k]
        for k in (
            "model_name",
            "environment",
            "new_version",
            "new_stage",
            "archived_version",
            "promoted",
            "already_promoted",
        )
    } == {
        "model_name": "m",
        "environment": "production",
        "new_version": "4",
        "new_stage": "Production",
        "archived_version": "3",
        "promoted": True,
        "already_promoted": False,
    }
    again = json.loads(
        run("promote", "m", "--to", "production", "--version", "4", "--format", "json").stdout
    )
    assert again["already_promoted"] is True
    assert again["promoted"] is False
    text = run("promote", "m", "--to", "production", "--version", "4")
    assert text.stdout == "m v4 is already pinned in production (environments/production/m.yaml)\n"


def test_promote_creates_a_pin_with_confidence(repo: Repo, run: RunCli) -> None:
    (repo.root / "environments" / "production").mkdir(parents=True)
    result = run(
        "promote", "new-model", "--to", "production", "--version", "2", "--confidence", "0.87"
    )
    assert result.exit_code == 0, result.stderr
    assert (repo.root / "environments/production/new-model.yaml").read_text() == (
        "# yaml-language-server: $schema=../../schemas/pin.schema.json\n"
        "model: new-model\nversion: 2\nconfidence: 0.87\n"
    )
    assert run("validate").exit_code == 0


def test_promote_falls_back_to_the_latest_staging_version(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    for stage in ("None", STAGING, STAGING, "None"):
        fake.create_version("m", stage=stage)
    repo.pin("production", "m", 1)
    result = run("promote", "m", "--to", "production")
    assert result.exit_code == 0
    assert "pinned m v3 in production (was v1)" in result.stdout
    assert "version from latest Staging version in the registry" in result.stdout


def test_promote_with_no_staging_version(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m")
    repo.pin("production", "m", 1)
    result = run("promote", "m", "--to", "production")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no version to promote: m has no pin in staging and no Staging version in the "
        "registry; name one with --version\n"
    )


def test_promote_on_a_branch_with_a_commit(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "m", 1)
    repo.pin("staging", "m", 2)
    repo.commit("pins")
    repo.write("notes.txt", "unrelated work in progress\n")
    result = run(
        "promote", "m", "--to", "production", "--branch", "promote-m-v2", "--confidence", "0.9"
    )
    assert result.exit_code == 0, result.stderr
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD").strip() == "promote-m-v2"
    assert (
        repo.git("log", "-1", "--format=%B").strip()
        == "Promote m v2 to production (was v1)\n\nComparison confidence: 0.9"
    )
    assert repo.git("show", "--name-only", "--format=", "HEAD").split() == [
        "environments/production/m.yaml"
    ]
    assert "notes.txt" in repo.git("status", "--porcelain")  # only the pin was committed
    taken = run("promote", "m", "--to", "staging", "--version", "3", "--branch", "promote-m-v2")
    assert taken.exit_code == 1
    assert taken.stderr == "error: --branch 'promote-m-v2': branch 'promote-m-v2' already exists\n"


def test_promote_refuses_bad_input_and_leaves_the_file(repo: Repo, run: RunCli) -> None:
    repo.write("environments/production/m.yaml", COMMENTED.replace("churn-model", "m"))
    before = (repo.root / "environments/production/m.yaml").read_text()
    bad = run("promote", "m", "--to", "production", "--version", "0")
    assert bad.exit_code == 1
    assert bad.stderr == "error: --version '0': a version is a positive integer\n"
    unknown = run("promote", "m", "--to", "qa", "--version", "2")
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: --to 'qa': no such environment (have: production)\n"
    assert (repo.root / "environments/production/m.yaml").read_text() == before
