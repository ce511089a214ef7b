"""Pins naming an MLflow prompt (Prompt Registry) through the CLI with the fake registry: every
command says it is a prompt and that reconciler does not manage prompts, at the pin's file and
line, and changes nothing; import reports prompts holding an environment's alias as skipped."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli

PIN = "environments/production/greeting.yaml"
REFUSAL = (
    f"error: {PIN}:1: model: 'greeting' is a prompt (MLflow Prompt Registry), not a registered "
    "model: reconciler does not manage prompts or their aliases; remove this pin"
)


@pytest.fixture
def prompted(repo: Repo, fake: FakeRegistry) -> FakeRegistry:
    """A prompt `greeting` with @production on v1, pinned in an environment keeping that alias;
    a model `churn` pinned beside it, in sync."""
    fake.create_prompt("greeting", {"production": "1"})
    fake.create_version("churn", stage=PRODUCTION)
    repo.write("environments/production.yaml", "stage: Production\nalias: production\n")
    repo.pin("production", "greeting", 1)
    repo.pin("production", "churn", 1)
    fake.set_alias("churn", "production", "1")
    fake.writes.clear()
    return fake


@pytest.mark.parametrize(
    "command",
    [
        ("plan",),
        ("plan", "--format", "markdown"),
        ("apply",),
        ("status",),
        ("status", "--format", "json"),
        ("promote", "greeting", "--to", "production", "--version", "1"),
    ],
    ids=" ".join,
)
def test_a_pin_naming_a_prompt_is_refused(
    repo: Repo, run: RunCli, prompted: FakeRegistry, command: tuple[str, ...]
) -> None:
    before = (repo.root / PIN).read_text()
    result = run(*command)
    assert result.exit_code == 1, result.stdout
    if "json" in command:
        problems = json.loads(result.stdout)["error"]["problems"]
        assert [(p["file"], p["line"], p["field"]) for p in problems] == [(PIN, 1, "model")]
        assert "is a prompt (MLflow Prompt Registry)" in problems[0]["message"]
    else:
        assert result.stderr.splitlines()[0] == REFUSAL
    assert "registered model 'greeting' not found" not in result.stderr
    assert prompted.writes == []
    assert (repo.root / PIN).read_text() == before


def test_status_of_other_models_after_the_prompt_pin_is_removed(
    repo: Repo, run: RunCli, prompted: FakeRegistry
) -> None:
    (repo.root / PIN).unlink()
    result = run("status")
    assert result.exit_code == 0, result.stderr
    assert "churn" in result.stdout


def test_promote_of_a_prompt_without_a_pin(repo: Repo, run: RunCli, prompted: FakeRegistry) -> None:
    (repo.root / PIN).unlink()
    result = run("promote", "greeting", "--to", "production", "--version", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: 'greeting' is a prompt (MLflow Prompt Registry), not a registered model: "
        "reconciler does not manage prompts or their aliases; remove this pin"
    ]
    assert not (repo.root / PIN).exists()


def test_a_model_that_does_not_exist_is_still_not_found(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "ghost", 1)
    result = run("plan")
    assert result.exit_code == 1
    assert "registered model 'ghost' not found" in result.stderr


def test_import_reports_prompts_as_skipped(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_prompt("greeting", {"production": "1"})
    fake.create_prompt("unserved", {"draft": "1"})
    fake.create_version("churn", stage=PRODUCTION)
    repo.write("environments/production.yaml", "stage: Production\nalias: production\n")
    (repo.root / "environments" / "production").mkdir()
    result = run("import")
    assert result.exit_code == 0, result.stderr
    assert (
        "  - skipped greeting in production: a prompt (MLflow Prompt Registry): reconciler does "
        "not manage prompts" in result.stdout
    )
    assert "unserved" not in result.stdout
    assert not (repo.root / PIN).exists()
    assert (repo.root / "environments/production/churn.yaml").exists()
    report = json.loads(run("import", "--format", "json").stdout)
    assert [s["model"] for s in report["skipped"]] == ["greeting"]
