"""Workspaces through the CLI on the fake registry: which workspace a command uses, what it
refuses before reading anything, and where the workspace shows (plan, status, audit, owner).
The real server with two same-named models is tests/integration/test_workspaces.py."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ModelVersion
from tests.conftest import Repo, RunCli, recorded_owner


@pytest.fixture
def two_versions(fake: FakeRegistry, repo: Repo) -> FakeRegistry:
    fake.workspaces_enabled = True
    fake.create_version("churn", stage=PRODUCTION)
    fake.create_version("churn")
    repo.pin("production", "churn", 2)
    return fake


def _versions(fake: FakeRegistry) -> dict[str, ModelVersion]:
    churn = fake.read_model("churn")
    assert churn is not None
    return dict(churn.versions)


def _workspace(repo: Repo, name: str) -> None:
    repo.write("environments/_defaults.yaml", f"workspace: {name}\n")


def test_the_plan_names_the_workspace_in_every_format(
    repo: Repo, run: RunCli, two_versions: FakeRegistry
) -> None:
    _workspace(repo, "team-a")
    text = run("plan")
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[0] == "workspace: team-a"
    markdown = run("plan", "--format", "markdown").stdout
    assert markdown.splitlines()[:3] == [
        "### Registry plan: changes pending",
        "",
        "Workspace: `team-a`",
    ]
    document = json.loads(run("plan", "--format", "json").stdout)
    assert (document["workspace"], document["workspace_chosen_by"]) == ("team-a", "settings")


def test_the_same_steps_in_another_workspace_are_another_plan(
    repo: Repo, run: RunCli, two_versions: FakeRegistry
) -> None:
    unnamed = json.loads(run("plan", "--format", "json").stdout)
    _workspace(repo, "team-a")
    named = json.loads(run("plan", "--format", "json").stdout)
    assert unnamed["changes"] == named["changes"]
    assert unnamed["checksum"] != named["checksum"]


def test_a_variable_naming_another_workspace_is_refused_before_any_read(
    repo: Repo, run: RunCli, two_versions: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _workspace(repo, "team-a")
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-b")
    for command in (["plan"], ["apply"], ["status"], ["unlock"]):
        result = run(*command)
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr.startswith(
            "error: environments/_defaults.yaml:1: workspace: this repository works in workspace "
            "'team-a', but MLFLOW_WORKSPACE is 'team-b': unset MLFLOW_WORKSPACE or make the two "
            "agree (nothing was read or changed)\n"
        ), result.stderr
    assert two_versions.writes == []
    assert _versions(two_versions)["1"].stage == PRODUCTION


def test_apply_with_no_workspace_chosen_is_refused_and_plan_says_which_it_read(
    run: RunCli, two_versions: FakeRegistry
) -> None:
    plan = run("plan")
    assert plan.exit_code == 0
    assert plan.stdout.splitlines()[0] == "workspace: default (none chosen)"
    applied = run("apply", "--format", "json")
    assert applied.exit_code == 1
    message = (
        "the registry has workspaces and none is chosen: set `workspace: <name>` in "
        "environments/_defaults.yaml (nothing was changed)"
    )
    assert applied.stderr == f"error: {message}\n"
    assert json.loads(applied.stdout)["error"]["message"] == message
    assert two_versions.writes == []


def test_the_variable_alone_reads_but_does_not_apply(
    run: RunCli, two_versions: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI job's variable may point at another team's workspace: only the repository's own
    setting lets apply write."""
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-b")
    assert run("plan").stdout.splitlines()[0] == "workspace: team-b"
    applied = run("apply")
    assert applied.exit_code == 1
    assert (
        "MLFLOW_WORKSPACE is 'team-b', but this repository does not say which one" in applied.stderr
    )
    assert two_versions.writes == []


def test_a_workspace_on_a_registry_without_workspaces_is_refused(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("churn", stage=PRODUCTION)
    repo.pin("production", "churn", 1)
    _workspace(repo, "team-a")
    for command in ("plan", "apply", "status"):
        result = run(command)
        assert result.exit_code == 1
        assert result.stderr == (
            "error: workspace 'team-a' (environments/_defaults.yaml) cannot be used: the registry "
            "at the fake registry has no workspaces (an MLflow server started with "
            "--enable-workspaces has them)\n"
        )
    assert fake.writes == []


def test_apply_records_the_workspace_in_audit_and_ownership(
    repo: Repo, run: RunCli, two_versions: FakeRegistry
) -> None:
    _workspace(repo, "team-a")
    result = run("apply")
    assert result.exit_code == 0, result.output
    tags = _versions(two_versions)["2"].tags
    [record] = audit.parse(tags[audit_tag("production")])
    assert record.workspace == "team-a"
    assert json.loads(tags[audit_tag("production")])[0]["workspace"] == "team-a"
    owner = recorded_owner(two_versions, "churn", "production")
    assert owner is not None
    assert owner.endswith(" workspace:team-a")
    writes = len(two_versions.writes)
    again = run("apply")
    assert "Nothing to do: the registry matches the pins." in again.stdout
    assert len(two_versions.writes) == writes


def test_records_without_a_workspace_stay_as_short_as_before(
    run: RunCli, fake: FakeRegistry, repo: Repo
) -> None:
    fake.create_version("churn", stage=PRODUCTION)
    fake.create_version("churn")
    repo.pin("production", "churn", 2)
    assert run("apply").exit_code == 0
    churn = fake.read_model("churn")
    assert churn is not None
    [record] = json.loads(churn.versions["2"].tags[audit_tag("production")])
    assert "workspace" not in record
    owner = recorded_owner(fake, "churn", "production")
    assert owner is not None
    assert "workspace" not in owner


def test_status_names_the_workspace(repo: Repo, run: RunCli, two_versions: FakeRegistry) -> None:
    _workspace(repo, "team-a")
    assert run("status").stdout.splitlines()[0] == "workspace: team-a"
    assert run("status", "--format", "markdown").stdout.startswith("Workspace: `team-a`\n\n|")
    [row] = json.loads(run("status", "--format", "json").stdout)
    assert row["workspace"] == "team-a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "workspace: Team_A\n",
            "environments/_defaults.yaml:1: workspace: 'Team_A' is not valid: a workspace name: "
            "lowercase letters, digits and inner hyphens, at most 63 characters (MLflow's rule), "
            "e.g. team-a\n",
            id="name-mlflow-refuses",
        ),
        pytest.param(
            "workspace: team-a\nstage: Production\n",
            "environments/_defaults.yaml:2: stage: unknown key (allowed: workspace)",
            id="unknown-key",
        ),
        pytest.param(
            "workspace: 010\n",
            "environments/_defaults.yaml:1: workspace:",
            id="yaml-1.1-number",
        ),
    ],
)
def test_a_bad_defaults_file_is_located(repo: Repo, run: RunCli, text: str, message: str) -> None:
    repo.pin("production", "churn", 1)
    repo.write("environments/_defaults.yaml", text)
    result = run("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {message}"), result.stderr


def test_the_defaults_file_is_no_environment(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "churn", 1)
    _workspace(repo, "team-a")
    assert run("validate").stdout == "ok: 1 pin(s) in 1 environment(s) are valid\n"
    named = run("validate", str(repo.root / "environments" / "_defaults.yaml"))
    assert named.exit_code == 0, named.output
    listed = json.loads(run("validate", "--format", "json").stdout)
    assert [env["name"] for env in listed["environments"]] == ["production"]
