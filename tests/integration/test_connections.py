"""One process, several registries (issue 17): two real `mlflow server --app-name basic-auth`
with their own databases and admin passwords (A also with workspaces), each holding a `churn`,
read and written from many threads at once through recording proxies. Every request carries its
own registry's credentials and workspace, never the other's nor the command's."""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import RegistryAuthError
from reconciler.pins.values import WorkspaceSetting
from reconciler.registry.connection import GATE, Connection
from reconciler.registry.messages import HTTP_DEFAULTS, QUIET
from reconciler.registry.mlflow_registry import MlflowRegistry
from reconciler.registry.workspaces import Workspace
from tests.support.proxy import RecordingProxy
from tests.support.server import start_auth_server, stop_server

pytestmark = pytest.mark.integration

ADMIN = "admin"
A_PASSWORD = "a-admin-Pa55word-unique"
B_PASSWORD = "b-admin-Pa55word-unique"
COMMAND = ("command-user", "command-Pa55word-unique")
WRONG = "wrong-Pa55word-unique"
MODEL = "churn"
A_VERSIONS = 2  # in A's workspace team-a (A's default workspace holds a churn with 1)
B_VERSIONS = 3


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _auth_server(workdir: Path, password: str, *extra: str) -> tuple[str, Any]:
    return start_auth_server(workdir, ADMIN, password, *extra)


def _seed(url: str, password: str, workspace: str | None, versions: int) -> None:
    """As the team's pipeline would: MLflow's client with the admin's variables (and the
    workspace) for the duration of the seeding only."""
    from mlflow import MlflowClient
    from mlflow.utils.workspace_context import WorkspaceContext

    with pytest.MonkeyPatch.context() as mp, WorkspaceContext(workspace):
        mp.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
        mp.setenv("MLFLOW_TRACKING_PASSWORD", password)
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        client.create_registered_model(MODEL)
        for number in range(versions):
            client.create_model_version(MODEL, source=f"s3://bucket/{workspace}/{number}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    a_url, a_process = _auth_server(
        tmp_path_factory.mktemp("registry-a"), A_PASSWORD, "--enable-workspaces"
    )
    try:
        # B proxies its artifacts (`mlflow-artifacts:`): transfers go through its REST API.
        b_dir = tmp_path_factory.mktemp("registry-b")
        b_url, b_process = _auth_server(
            b_dir,
            B_PASSWORD,
            *("--default-artifact-root", "mlflow-artifacts:/"),
            *("--artifacts-destination", str(b_dir / "proxied")),
        )
        try:
            request = urllib.request.Request(
                f"{a_url}/api/3.0/mlflow/workspaces",
                data=json.dumps({"name": "team-a"}).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": _basic(ADMIN, A_PASSWORD),
                },
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 201
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                _seed(a_url, A_PASSWORD, "team-a", A_VERSIONS)
                _seed(a_url, A_PASSWORD, None, 1)  # A's default workspace: never ours here
                _seed(b_url, B_PASSWORD, None, B_VERSIONS)
            yield a_url, b_url
        finally:
            stop_server(b_process)
    finally:
        stop_server(a_process)


@pytest.fixture
def proxies(servers: tuple[str, str]) -> Iterator[tuple[RecordingProxy, RecordingProxy]]:
    a, b = RecordingProxy(servers[0]), RecordingProxy(servers[1])
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def command_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The command's own registry variables: a third user and a workspace of its own, which no
    configured registry may ever send. Returns the environment as the user set it."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", COMMAND[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", COMMAND[1])
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-command")
    return _environment()


def _environment() -> dict[str, str]:
    """The process environment, but for pytest's own bookkeeping, the HTTP retry budget the
    adapter sets for the process when the user set none (design notes, "HTTP defaults") and
    MLflow's run links kept off stdout (messages.QUIET)."""
    ignored = {"PYTEST_CURRENT_TEST", *HTTP_DEFAULTS, *QUIET}
    return {k: v for k, v in os.environ.items() if k not in ignored}


def _tags(url: str, password: str, workspace: str | None) -> dict[str, str]:
    from mlflow import MlflowClient
    from mlflow.utils.workspace_context import WorkspaceContext

    with pytest.MonkeyPatch.context() as mp, WorkspaceContext(workspace):
        mp.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
        mp.setenv("MLFLOW_TRACKING_PASSWORD", password)
        found = MlflowClient(tracking_uri=url, registry_uri=url).get_registered_model(MODEL)
    return {k: v for k, v in found.tags.items() if k.startswith("thread-")}


def _in_threads(work: Any, threads: int = 8) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as error:  # reported by the test, with the others
            errors.append(error)

    started = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(240)
    return errors


def test_two_registries_from_eight_threads_each_request_carries_its_own_identity(
    servers: tuple[str, str],
    proxies: tuple[RecordingProxy, RecordingProxy],
    command_environment: dict[str, str],
) -> None:
    proxy_a, proxy_b = proxies
    a = MlflowRegistry(
        connection=Connection(proxy_a.url, ADMIN, A_PASSWORD, configured=True),
    )
    b = MlflowRegistry(
        connection=Connection(proxy_b.url, ADMIN, B_PASSWORD, configured=True),
    )
    assert a.use_workspace(WorkspaceSetting("team-a", "environments/prod/_settings.yaml")) == (
        Workspace("team-a", "settings")
    )
    assert b.use_workspace(None) == Workspace()  # the command's MLFLOW_WORKSPACE is not B's

    def work(index: int) -> None:
        for round_ in range(4):
            for name, registry, versions in (("a", a, A_VERSIONS), ("b", b, B_VERSIONS)):
                registry.set_model_tag(MODEL, f"thread-{index}", f"{name}-{index}-{round_}")
                assert len(registry.read_versions(MODEL)) == versions, name

    assert _in_threads(work) == []
    assert _environment() == command_environment

    # Each write landed on its own server and workspace.
    assert _tags(servers[0], A_PASSWORD, "team-a") == {f"thread-{i}": f"a-{i}-3" for i in range(8)}
    assert _tags(servers[0], A_PASSWORD, None) == {}  # A's default workspace untouched
    assert _tags(servers[1], B_PASSWORD, None) == {f"thread-{i}": f"b-{i}-3" for i in range(8)}

    # Every request to A carried A's credentials and (after the server-info question, which
    # precedes the choice) A's workspace; every request to B, B's and no workspace.
    assert len(proxy_a.requests) > 8 * 4 * 2
    assert set(proxy_a.authorizations) == {_basic(ADMIN, A_PASSWORD)}
    assert proxy_a.requests[0][1] == "/api/3.0/mlflow/server-info"
    assert proxy_a.workspaces[0] is None
    assert set(proxy_a.workspaces[1:]) == {"team-a"}
    assert set(proxy_b.authorizations) == {_basic(ADMIN, B_PASSWORD)}
    assert set(proxy_b.workspaces) == {None}


def test_wrong_credentials_fail_that_registry_in_one_line_while_the_other_keeps_working(
    servers: tuple[str, str],
    proxies: tuple[RecordingProxy, RecordingProxy],
    command_environment: dict[str, str],
) -> None:
    proxy_a, proxy_b = proxies
    good = MlflowRegistry(connection=Connection(proxy_a.url, ADMIN, A_PASSWORD, configured=True))
    good.use_workspace(WorkspaceSetting("team-a", "environments/prod/_settings.yaml"))
    bad = MlflowRegistry(connection=Connection(proxy_b.url, ADMIN, WRONG, configured=True))
    refusals: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        if index % 2:
            assert len(good.read_versions(MODEL)) == A_VERSIONS
            good.set_model_tag(MODEL, f"thread-{index}", "still-working")
            return
        try:
            bad.read_versions(MODEL)
        except RegistryAuthError as error:
            with lock:
                refusals.append(str(error))

    assert _in_threads(work) == []
    assert (
        refusals
        == [
            f"authentication failed at {proxy_b.url}: check the username and password (or token) "
            "of its registry settings"
        ]
        * 4
    )
    assert _environment() == command_environment
    assert set(proxy_b.authorizations) == {_basic(ADMIN, WRONG)}  # never A's, never the command's
    assert set(proxy_a.authorizations) == {_basic(ADMIN, A_PASSWORD)}
    for text in refusals:
        for secret in (WRONG, A_PASSWORD, B_PASSWORD, COMMAND[1]):
            assert secret not in text


def test_the_commands_registry_still_sends_the_commands_credentials_and_workspace(
    servers: tuple[str, str],
    proxies: tuple[RecordingProxy, RecordingProxy],
    command_environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beside a configured registry, the command's own (not configured) keeps today's rules:
    MLFLOW_TRACKING_* and MLFLOW_WORKSPACE as the user set them."""
    proxy_a, proxy_b = proxies
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", A_PASSWORD)
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-a")
    before = _environment()
    command = MlflowRegistry(proxy_a.url)
    assert command.use_workspace(None) == Workspace("team-a", "MLFLOW_WORKSPACE")
    other = MlflowRegistry(connection=Connection(proxy_b.url, ADMIN, B_PASSWORD, configured=True))
    other.use_workspace(None)

    def work(index: int) -> None:
        registry, versions = (command, A_VERSIONS) if index % 2 else (other, B_VERSIONS)
        for _ in range(3):
            assert len(registry.read_versions(MODEL)) == versions

    assert _in_threads(work) == []
    assert _environment() == before
    assert set(proxy_a.authorizations) == {_basic(ADMIN, A_PASSWORD)}
    assert set(proxy_a.workspaces) == {"team-a"}
    assert set(proxy_b.authorizations) == {_basic(ADMIN, B_PASSWORD)}
    assert set(proxy_b.workspaces) == {None}


def test_artifact_transfers_on_mlflows_own_threads_carry_the_registrys_credentials(
    proxies: tuple[RecordingProxy, RecordingProxy],
    command_environment: dict[str, str],
    tmp_path: Path,
) -> None:
    """MLflow's artifact repositories read the credentials from the environment per request
    and download on a thread pool of their own: inside the gate, every transfer to B's proxied
    `mlflow-artifacts:` store carries B's credentials while A's calls keep arriving (and wait)."""
    from mlflow import MlflowClient

    proxy_a, proxy_b = proxies
    a = MlflowRegistry(connection=Connection(proxy_a.url, ADMIN, A_PASSWORD, configured=True))
    a.use_workspace(WorkspaceSetting("team-a", "environments/prod/_settings.yaml"))
    b = Connection(proxy_b.url, ADMIN, B_PASSWORD, configured=True)
    files = tmp_path / "model"
    files.mkdir()
    for number in range(12):
        (files / f"part-{number}.bin").write_bytes(os.urandom(1000 * (number + 1)))
    stop = threading.Event()
    reads = []

    def keep_reading_a() -> None:
        while not stop.is_set():
            reads.append(len(a.read_versions(MODEL)))

    reader = threading.Thread(target=keep_reading_a)
    reader.start()
    try:
        with GATE.holding(b.settings(None)):
            client = MlflowClient(tracking_uri=proxy_b.url, registry_uri=proxy_b.url)
            run = client.create_run("0").info.run_id
            client.log_artifacts(run, str(files), "model")
            back = Path(client.download_artifacts(run, "model", str(tmp_path / "back")))
    finally:
        stop.set()
        reader.join(60)
    assert reads
    assert set(reads) == {A_VERSIONS}
    for sent in files.iterdir():
        assert (back / sent.name).read_bytes() == sent.read_bytes()
    transfers = [path for _method, path in proxy_b.requests if "mlflow-artifacts" in path]
    assert len(transfers) >= 24  # 12 uploads, 12 downloads (and the listing)
    assert set(proxy_b.authorizations) == {_basic(ADMIN, B_PASSWORD)}
    assert set(proxy_b.workspaces) == {None}
    assert set(proxy_a.authorizations) == {_basic(ADMIN, A_PASSWORD)}
    assert _environment() == command_environment
