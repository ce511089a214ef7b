"""Workspaces on a real `mlflow server --enable-workspaces`: two workspaces each hold a `churn`.

The reconciler runs as a real process (its MLFLOW_WORKSPACE is its own), through a recording
proxy that sees the workspace header of every request, also from the apply's worker threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Repo, commit_pins
from tests.support.proxy import RecordingProxy
from tests.support.server import start_or_fail, stop_server

pytestmark = pytest.mark.integration

SERVER_INFO = "/api/3.0/mlflow/server-info"


@pytest.fixture(scope="module")
def workspace_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_or_fail(tmp_path_factory.mktemp("workspaces"), "--enable-workspaces")
    try:
        for name in ("team-a", "team-b"):
            request = urllib.request.Request(
                f"{url}/api/3.0/mlflow/workspaces",
                data=json.dumps({"name": name}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 201
        yield url
    finally:
        stop_server(process)


@pytest.fixture
def workspace_proxy(workspace_server: str) -> Iterator[RecordingProxy]:
    recording = RecordingProxy(workspace_server)
    try:
        yield recording
    finally:
        recording.close()


class Workspaces:
    """Seeds and reads each workspace the way the team's pipeline would (MLflow's client with
    the workspace chosen for the duration of each call)."""

    def __init__(self, url: str) -> None:
        from mlflow import MlflowClient

        self.client: Any = MlflowClient(tracking_uri=url, registry_uri=url)

    def _in(self, workspace: str) -> Any:
        from mlflow.utils.workspace_context import WorkspaceContext

        return WorkspaceContext(workspace)

    def model(self, workspace: str, name: str, versions: int, production: str) -> None:
        with self._in(workspace), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.create_registered_model(name)
            for number in range(versions):
                self.client.create_model_version(name, source=f"s3://bucket/{workspace}/{number}")
            self.client.transition_model_version_stage(name, production, "Production")

    def stages(self, workspace: str, name: str) -> dict[str, str]:
        with self._in(workspace):
            found = self.client.search_model_versions(f"name = '{name}'")
        return {str(mv.version): mv.current_stage for mv in found}

    def version_tags(self, workspace: str, name: str, version: str) -> dict[str, str]:
        with self._in(workspace):
            return dict(self.client.get_model_version(name, version).tags)


@pytest.fixture(scope="module")
def workspaces(workspace_server: str) -> Workspaces:
    seeded = Workspaces(workspace_server)
    seeded.model("team-a", "churn", versions=2, production="1")
    seeded.model("team-b", "churn", versions=4, production="4")
    return seeded


def reconciler(
    repo: Repo, url: str, *args: str, workspace: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_WORKSPACE"}
    if workspace is not None:
        env["MLFLOW_WORKSPACE"] = workspace
    if "apply" in args:
        commit_pins(repo.root)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "--tracking-uri", url, *args],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _team_a_repo(repo: Repo) -> None:
    repo.write("environments/_defaults.yaml", "workspace: team-a\n")
    repo.pin("production", "churn", 2)


def test_apply_moves_its_own_workspaces_model_and_every_request_says_so(
    repo: Repo, workspaces: Workspaces, workspace_proxy: RecordingProxy
) -> None:
    _team_a_repo(repo)
    plan = reconciler(repo, workspace_proxy.url, "plan", "--format", "markdown")
    assert plan.returncode == 0, plan.stderr
    assert "Workspace: `team-a`" in plan.stdout
    assert "/#/models/churn/versions/2?workspace=team-a" in plan.stdout
    workspace_proxy.clear()
    workspace_proxy.workspaces.clear()
    applied = reconciler(repo, workspace_proxy.url, "apply", "--parallelism", "4")
    assert applied.returncode == 0, applied.stderr
    assert workspaces.stages("team-a", "churn") == {"1": "Archived", "2": "Production"}
    # The other team's same-named model is untouched.
    assert workspaces.stages("team-b", "churn") == {
        "1": "None",
        "2": "None",
        "3": "None",
        "4": "Production",
    }
    sent = [
        (path, workspace)
        for (_method, path), workspace in zip(
            workspace_proxy.requests, workspace_proxy.workspaces, strict=True
        )
        if SERVER_INFO not in path
    ]
    assert sent, "the apply sent nothing through the proxy"
    assert {workspace for _path, workspace in sent} == {"team-a"}, sent
    [record] = json.loads(
        workspaces.version_tags("team-a", "churn", "2")["reconciler.audit.production"]
    )
    assert record["workspace"] == "team-a"


def test_a_variable_naming_another_workspace_stops_before_any_request(
    repo: Repo, workspaces: Workspaces, workspace_proxy: RecordingProxy
) -> None:
    _team_a_repo(repo)
    workspace_proxy.clear()
    workspace_proxy.workspaces.clear()
    result = reconciler(repo, workspace_proxy.url, "apply", workspace="team-b")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: environments/_defaults.yaml:1: workspace: this repository works in workspace "
        "'team-a', but MLFLOW_WORKSPACE is 'team-b'"
    ), result.stderr
    assert "Traceback" not in result.stderr
    assert workspace_proxy.requests == []
    assert workspaces.stages("team-b", "churn")["4"] == "Production"


def test_no_workspace_chosen_reads_the_default_and_refuses_to_apply(
    repo: Repo, workspaces: Workspaces, workspace_server: str
) -> None:
    repo.pin("production", "churn", 2)
    plan = reconciler(repo, workspace_server, "plan", "--format", "json")
    # The default workspace holds no churn: the pin names a model that is not there.
    assert plan.returncode == 1
    assert json.loads(plan.stdout)["error"]["problems"][0]["message"].startswith(
        "registered model 'churn' not found"
    ), plan.stdout
    applied = reconciler(repo, workspace_server, "apply")
    assert applied.returncode == 1
    assert "the registry has workspaces and none is chosen" in applied.stderr
    assert workspaces.stages("team-b", "churn")["4"] == "Production"
    assert workspaces.stages("team-a", "churn")["1"] in ("Production", "Archived")


def test_the_variable_alone_is_not_enough_to_apply(
    repo: Repo, workspaces: Workspaces, workspace_server: str
) -> None:
    repo.pin("production", "churn", 3)
    plan = reconciler(repo, workspace_server, "plan", workspace="team-b")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines()[0] == "workspace: team-b"
    applied = reconciler(repo, workspace_server, "apply", workspace="team-b")
    assert applied.returncode == 1
    assert (
        "MLFLOW_WORKSPACE is 'team-b', but this repository does not say which one" in applied.stderr
    )
    assert workspaces.stages("team-b", "churn")["4"] == "Production"


def test_import_reads_the_repositorys_workspace(
    repo: Repo, workspaces: Workspaces, workspace_server: str
) -> None:
    repo.write("environments/_defaults.yaml", "workspace: team-b\n")
    result = reconciler(repo, workspace_server, "import", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["workspace"] == "team-b"
    pin = (repo.root / "environments/production/churn.yaml").read_text()
    assert "version: 4" in pin
    assert "(workspace team-b)" in pin


def test_a_workspace_on_a_server_without_workspaces_is_refused(
    repo: Repo, mlflow_server: str
) -> None:
    _team_a_repo(repo)
    for command in ("plan", "apply"):
        result = reconciler(repo, mlflow_server, command)
        assert result.returncode == 1
        assert result.stderr.startswith(
            "error: workspace 'team-a' (environments/_defaults.yaml) cannot be used: the "
            f"registry at {mlflow_server} has no workspaces"
        ), result.stderr


def test_a_server_that_will_not_say_whether_it_has_workspaces_is_not_taken_for_one_without(
    repo: Repo, workspaces: Workspaces, workspace_proxy: RecordingProxy
) -> None:
    """Review of the change: a refused server-info (403 from a proxy in front, say) was read as
    "no workspaces" when nothing was chosen, and an apply went on in the default workspace."""
    from tests.support.proxy import Fault

    repo.pin("production", "churn", 2)
    workspace_proxy.faults.append(Fault("status", SERVER_INFO, times=10, status=403))
    workspace_proxy.clear()
    result = reconciler(repo, workspace_proxy.url, "apply", "--format", "json")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(
        "error: cannot ask the registry whether it has workspaces at "
    ), result.stderr
    assert json.loads(result.stdout)["error"]["exit_code"] == 1
    assert workspace_proxy.writes() == []


def test_an_environment_in_its_own_workspace_is_read_and_written_there(
    repo: Repo, workspaces: Workspaces, workspace_proxy: RecordingProxy
) -> None:
    """Issue 15 §1's per-environment override (built with issue 17's registry per environment):
    staging in the repository's workspace, production in another, on one server."""
    workspaces.model("team-a", "fraud", versions=2, production="1")
    workspaces.model("team-b", "fraud", versions=3, production="1")
    repo.write("environments/_defaults.yaml", "workspace: team-a\n")
    repo.write(
        "environments/production.yaml", "stage: Production\nregistry:\n  workspace: team-b\n"
    )
    repo.pin("staging", "fraud", 2)
    repo.pin("production", "fraud", 3)  # team-b's own v3
    plan = reconciler(repo, workspace_proxy.url, "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    registries = json.loads(plan.stdout)["registries"]
    assert registries["production"]["workspace"] == "team-b"
    assert registries["staging"]["workspace"] == "team-a"
    workspace_proxy.clear()
    workspace_proxy.workspaces.clear()
    applied = reconciler(repo, workspace_proxy.url, "apply")
    assert applied.returncode == 0, applied.stderr
    assert workspaces.stages("team-b", "fraud") == {"1": "Archived", "2": "None", "3": "Production"}
    assert workspaces.stages("team-a", "fraud") == {"1": "Production", "2": "Staging"}
    sent = {
        workspace
        for (_method, path), workspace in zip(
            workspace_proxy.requests, workspace_proxy.workspaces, strict=True
        )
        if SERVER_INFO not in path
    }
    assert sent == {"team-a", "team-b"}
    [record] = json.loads(
        workspaces.version_tags("team-b", "fraud", "3")["reconciler.audit.production"]
    )
    assert record["workspace"] == "team-b"
    # MLFLOW_WORKSPACE naming the repository's workspace does not move production out of its own.
    again = reconciler(repo, workspace_proxy.url, "plan", "--detailed-exitcode", workspace="team-a")
    assert again.returncode == 0, again.stdout + again.stderr
