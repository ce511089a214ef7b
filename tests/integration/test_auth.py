"""A real `mlflow server --app-name basic-auth`: credentials from MLflow's variables, refusals as
one line, and no password in any output."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import AppContext, cli
from reconciler.pins.values import PRODUCTION
from tests.conftest import Repo, commit_pins
from tests.integration.conftest import Seeder
from tests.support.server import start_auth_server, stop_server

pytestmark = pytest.mark.integration

ADMIN = ("admin", "admin-Pa55word-for-tests")
READER = ("reader", "reader-Pa55word-for-tests")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("mlflow-auth-server")
    url, process = start_auth_server(workdir, *ADMIN)
    try:
        yield url
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def admin_seeder(auth_server: str) -> Iterator[Seeder]:
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    _create_user(auth_server, *READER)
    seeder = Seeder(auth_server)
    name = seeder.name("guarded")
    seeder.model(name, [0.5, 0.6])
    seeder.stage(name, "1", PRODUCTION)
    try:
        yield seeder
    finally:
        mp.undo()


@pytest.fixture(autouse=True)
def _seeder_is_admin(_guard_real_defaults: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeder's MlflowClient reads credentials per request; the CLI gets its own per run."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])


def run_as(repo: Repo, url: str, user: str, password: str, *args: str):  # type: ignore[no-untyped-def]
    env = {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}
    runner = CliRunner(env=env)
    if "apply" in args:
        commit_pins(repo.root)  # apply refuses uncommitted pins
    return runner.invoke(cli, ["--tracking-uri", url, *args], obj=AppContext(root=repo.root))


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in (ADMIN[1], READER[1], "wrong-password-123"):
            assert secret not in text


def test_reader_can_plan_but_apply_is_refused_before_any_change(
    repo: Repo, auth_server: str, admin_seeder: Seeder
) -> None:
    name = admin_seeder.name("guarded")
    repo.pin("production", name, 2)
    plan = run_as(repo, auth_server, *READER, "plan", "--model", name, "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stderr
    assert f"  ~ {name}: v1 → v2 (v2 → Production, archives v1)" in plan.stdout
    applied = run_as(repo, auth_server, *READER, "apply", "--model", name)
    assert applied.exit_code == 1
    assert applied.stdout == ""
    assert applied.stderr == (
        f"error: permission denied: user 'reader' may not change registered model '{name}' "
        "(stages and aliases need write permission: EDIT in MLflow's basic-auth); "
        "nothing was changed\n"
    )
    assert admin_seeder.stages(name) == {"1": PRODUCTION, "2": "None"}
    assert_no_secrets(plan.stdout, plan.stderr, applied.stdout, applied.stderr)


def test_admin_can_apply(repo: Repo, auth_server: str, admin_seeder: Seeder) -> None:
    # A model of its own: applying (or adopting) `guarded` would fence it to this test's repository.
    name = admin_seeder.name("admin-own")
    admin_seeder.model(name, [0.5])
    repo.pin("production", name, 1)
    result = run_as(repo, auth_server, *ADMIN, "apply", "--model", name)
    assert result.exit_code == 0, result.stderr
    assert admin_seeder.stages(name) == {"1": PRODUCTION}
    assert_no_secrets(result.stdout, result.stderr)


def test_wrong_password_is_one_line(repo: Repo, auth_server: str, admin_seeder: Seeder) -> None:
    repo.pin("production", admin_seeder.name("guarded"), 1)
    result = run_as(repo, auth_server, "admin", "wrong-password-123", "plan")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: authentication failed at {auth_server}: check MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)\n"
    )


def test_credentials_in_the_uri_are_never_shown(
    repo: Repo, auth_server: str, admin_seeder: Seeder, tmp_path: Path
) -> None:
    repo.pin("production", admin_seeder.name("guarded"), 1)
    uri = auth_server.replace("http://", "http://admin:wrong-password-123@")
    # No credentials but the URI's: the server refuses them, and the message hides them.
    runner = CliRunner(env={"MLFLOW_TRACKING_USERNAME": None, "MLFLOW_TRACKING_PASSWORD": None})
    result = runner.invoke(
        cli, ["--tracking-uri", uri, "--traceback", "plan"], obj=AppContext(root=repo.root)
    )
    assert result.exit_code == 1
    redacted = auth_server.replace("http://", "http://***@")
    assert result.stderr.splitlines()[-1] == (
        f"error: authentication failed at {redacted}: check MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
    )
    assert_no_secrets(result.stdout, result.stderr)


def test_debug_log_shows_requests_but_no_credentials(
    repo: Repo, auth_server: str, admin_seeder: Seeder
) -> None:
    name = admin_seeder.name("guarded")
    repo.pin("production", name, 2)
    result = run_as(repo, auth_server, *READER, "--debug", "apply", "--model", name)
    assert result.exit_code == 1
    assert "debug: urllib3" in result.stderr  # the requests are logged...
    basic = base64.b64encode(":".join(READER).encode()).decode()
    assert basic not in result.stderr  # ...but neither the password nor the header built from it
    assert_no_secrets(result.stdout, result.stderr)
    with_bug = run_as(repo, auth_server, *READER, "--debug", "--traceback", "plan", "--model", name)
    assert_no_secrets(with_bug.stdout, with_bug.stderr)


TEAMS = {"alice": "alice-Pa55word-for-tests", "bob": "bob-Pa55word-for-tests"}


def _create_user(url: str, user: str, password: str) -> None:
    """The auth REST API directly: importing mlflow.server here would drag the server into the
    test process."""
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/users/create",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode(),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_two_teams_each_owning_their_models_both_apply(
    tmp_path: Path, auth_server: str, admin_seeder: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8 §7: with EDIT only on its own models (MLflow gives the creator MANAGE), each team
    applies its own promotions; there is no registry-wide lease for the first team to own."""
    from mlflow import MlflowClient

    names = {user: admin_seeder.name(f"team-{user}") for user in TEAMS}
    repos = {}
    for user, password in TEAMS.items():
        _create_user(auth_server, user, password)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        client = MlflowClient(tracking_uri=auth_server, registry_uri=auth_server)
        for name in (names[user], f"{names[user]}-next"):
            client.create_registered_model(name)
            for _ in range(2):
                client.create_model_version(name, source=f"s3://team/{user}")
        repos[user] = Repo(tmp_path / user)
        repos[user].pin("production", names[user], 2)
        repos[user].commit(f"{user} promotes")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])

    for user, password in TEAMS.items():
        result = run_as(repos[user], auth_server, user, password, "apply")
        assert result.exit_code == 0, result.stdout + result.stderr
        assert admin_seeder.stages(names[user]) == {"1": "None", "2": PRODUCTION}
        assert_no_secrets(result.stdout, result.stderr)
    # A second round (in sync, recorded): nothing to do for either team.
    for user, password in TEAMS.items():
        again = run_as(repos[user], auth_server, user, password, "apply")
        assert again.exit_code == 0, again.stderr
        assert again.stdout.splitlines()[0] == "Nothing to do: the registry matches the pins."

    # One team's credentials on the other team's model: refused before any change.
    other = f"{names['bob']}-next"
    trespass = Repo(tmp_path / "trespass")
    trespass.pin("production", other, 1)
    trespass.commit("alice pins bob's model")
    refused = run_as(trespass, auth_server, "alice", TEAMS["alice"], "apply")
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: permission denied: user 'alice' may not change registered model "
        f"'{other}' (stages and aliases need write permission: EDIT in MLflow's "
        "basic-auth); nothing was changed\n"
    )
    assert admin_seeder.stages(other) == {"1": "None", "2": "None"}
    registered = {rm.name for rm in admin_seeder.client.search_registered_models()}
    assert "reconciler-state" not in registered
