"""Issue 17's unhappy paths through the CLI on two real registries: staging in the dev registry
(`mlflow_server`, the command's), production in its own (`prod_server`, artifacts proxied), its
pins copying staging's versions (`from: staging`). Racing applies, an apply SIGKILLed or
SIGTERMed mid-upload, wrong or missing credentials for the prod registry, and a registry that
changes under the apply (a source version deleted, the prod model deleted by hand)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.registry.lineage import COPY_EXPERIMENT, TARGET_MODEL
from tests.conftest import Repo, make_runner
from tests.support.copy_models import log_models
from tests.support.proxy import RecordingProxy
from tests.support.server import start_auth_server, stop_server

pytestmark = pytest.mark.integration

EXTRA_BYTES = 3_000_000  # a weights file beside the model: the upload takes a few requests
PROD_SETTINGS = (
    "stage: Production\nalias: champion\nregistry:\n  tracking_uri: ${PROD_MLFLOW_URI}\n"
)
UPLOADS = "/mlflow-artifacts/artifacts/"


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def dev_source(mlflow_server: str) -> tuple[str, str]:
    """A real sklearn model (with EXTRA_BYTES of weights) logged once in the dev registry: its
    source folder and run. Each test registers its own model from it (no copy of it exists)."""
    versions = log_models(mlflow_server, f"faults-{uuid.uuid4().hex[:8]}", EXTRA_BYTES)
    return versions["1"]["source"], versions["1"]["run_id"]


def _dev_model(uri: str, source: tuple[str, str], base: str = "churn", versions: int = 1) -> str:
    name = f"{base}-{uuid.uuid4().hex[:8]}"
    client = _client(uri)
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source[0], run_id=source[1])
    return name


def _promoting(repo: Repo, name: str, settings: str = PROD_SETTINGS) -> str:
    """production takes staging's v1 (which staging does not serve yet: a pending change)."""
    repo.write("environments/production.yaml", settings)
    repo.pin("staging", name, 1)
    repo.pin("production", name, 1, **{"from": "staging"})
    return repo.commit(f"Promote {name} v1")


def _prod_versions(uri: str, name: str) -> dict[str, tuple[str, str, str]]:
    """Version → (stage, status, the source version it copies)."""
    found = _client(uri).search_model_versions(f"name = '{name}'")
    return {
        str(mv.version): (
            mv.current_stage,
            mv.status,
            mv.tags.get("reconciler.copy.source_version", ""),
        )
        for mv in found
    }


def _copy_runs(uri: str, name: str) -> dict[str, tuple[str, str]]:
    """Every run (deleted ones too) of prod's copy experiment made for `name`: id → (status,
    lifecycle)."""
    from mlflow.entities import ViewType

    client = _client(uri)
    experiment = client.get_experiment_by_name(COPY_EXPERIMENT)
    if experiment is None:
        return {}
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{TARGET_MODEL}` = '{name}'",
        run_view_type=ViewType.ALL,
    )
    return {r.info.run_id: (r.info.status, r.info.lifecycle_stage) for r in runs}


def _stages(uri: str, name: str) -> dict[str, str]:
    found = _client(uri).search_model_versions(f"name = '{name}'")
    return {str(mv.version): mv.current_stage for mv in found}


def _start(repo: Repo, dev: str, prod: str, *args: str) -> subprocess.Popen[str]:
    """`reconciler apply ...` in its own process, production's registry at `prod`."""
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--tracking-uri", dev, "apply", *args],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PROD_MLFLOW_URI": prod, "PYTHONWARNINGS": "ignore"},
    )


def _wait_for(what: str, done: Any, process: subprocess.Popen[str], within: float = 90) -> None:
    deadline = time.monotonic() + within
    while not done():
        if process.poll() is not None:
            raise AssertionError(f"exited before {what}: {process.communicate()}")
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.05)


def _puts(proxy: RecordingProxy) -> int:
    return sum(1 for method, path in list(proxy.requests) if method == "PUT" and UPLOADS in path)


@pytest.fixture
def slow_prod(prod_server: str) -> Iterator[RecordingProxy]:
    """prod behind a proxy whose artifact uploads take 3 s each (the first one goes through at
    once): an apply is mid-upload for long enough to be killed."""
    proxy = RecordingProxy(prod_server)
    seen: list[str] = []

    def slow(method: str, path: str) -> None:
        if method == "PUT" and UPLOADS in path:
            seen.append(path)
            if len(seen) > 1:
                time.sleep(3)

    proxy.on_request = slow
    try:
        yield proxy
    finally:
        proxy.on_request = None
        proxy.close()


# -- 1. racing applies ---------------------------------------------------------------------------


def test_racing_applies_make_one_copy_and_both_succeed(
    repo: Repo, mlflow_server: str, prod_server: str, dev_source: tuple[str, str]
) -> None:
    name = _dev_model(mlflow_server, dev_source)
    _promoting(repo, name)
    racers = [_start(repo, mlflow_server, prod_server, "--env", "production") for _ in range(2)]
    outputs = [racer.communicate(timeout=180) for racer in racers]
    for racer, (stdout, stderr) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, stdout + stderr
        assert "View run" not in stdout  # MLflow's chatter when a run ends is not our report
    assert _prod_versions(prod_server, name) == {"1": ("Production", "READY", "1")}
    assert len(_copy_runs(prod_server, name)) == 1  # one upload, never two
    said = "".join(out + err for out, err in outputs)
    assert said.count("copied staging v1 into production's registry as v1") == 1
    assert _client(prod_server).get_model_version_by_alias(name, "champion").version == "1"
    assert _stages(mlflow_server, name) == {"1": "None"}  # --env production: dev untouched


# -- 2. SIGKILL mid-upload ------------------------------------------------------------------------


def test_an_apply_killed_mid_upload_is_converged_by_the_next_without_unlock(
    repo: Repo,
    mlflow_server: str,
    prod_server: str,
    dev_source: tuple[str, str],
    slow_prod: RecordingProxy,
) -> None:
    name = _dev_model(mlflow_server, dev_source)
    _promoting(repo, name)
    killed = _start(repo, mlflow_server, slow_prod.url, "--env", "production")
    _wait_for("uploading", lambda: _puts(slow_prod) >= 2, killed)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=10)
    assert _prod_versions(prod_server, name) == {}  # nothing registered half-made
    ((half, (status, _stage)),) = _copy_runs(prod_server, name).items()
    assert status == "RUNNING"

    # The next apply, straight to prod: the dead process's lease (this host) is free at once.
    started = time.monotonic()
    again = _start(
        repo, mlflow_server, prod_server, "--env", "production", "--lease-wait", "0",
        "--format", "json",
    )  # fmt: skip
    stdout, stderr = again.communicate(timeout=120)
    waited = time.monotonic() - started
    assert again.returncode == 0, stdout + stderr
    assert [r["outcome"] for r in json.loads(stdout)] == ["applied"]  # one document on stdout
    assert "waiting for the lease" not in stdout + stderr
    assert waited < 60
    assert _prod_versions(prod_server, name) == {"1": ("Production", "READY", "1")}
    runs = _copy_runs(prod_server, name)
    assert runs[half] == ("FAILED", "deleted")  # the unfinished upload cleaned, never registered
    assert sorted(status for status, _stage in runs.values()) == ["FAILED", "FINISHED"]


# -- 3. SIGTERM mid-upload (a cancelled CI job) ----------------------------------------------------


def test_sigterm_mid_upload_stops_promptly_moves_nothing_and_the_next_apply_converges(
    repo: Repo,
    mlflow_server: str,
    prod_server: str,
    dev_source: tuple[str, str],
    slow_prod: RecordingProxy,
) -> None:
    name = _dev_model(mlflow_server, dev_source)
    _promoting(repo, name)
    cancelled = _start(repo, mlflow_server, slow_prod.url, "--env", "production")
    _wait_for("uploading", lambda: _puts(slow_prod) >= 2, cancelled)
    cancelled.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    stdout, stderr = cancelled.communicate(timeout=60)
    stopped_after = time.monotonic() - signalled
    assert cancelled.returncode == 143, stdout + stderr
    assert stopped_after < 5, f"stopped {stopped_after:.1f} s after SIGTERM"
    assert "error: SIGTERM:" in stderr
    assert "Stopped by SIGTERM" in stdout  # its report
    assert "Traceback" not in stderr
    assert _prod_versions(prod_server, name) == {}  # stopped before anything was registered
    ((_run, state),) = _copy_runs(prod_server, name).items()
    assert state == ("FAILED", "deleted")  # its unfinished upload deleted at once

    again = _start(repo, mlflow_server, prod_server, "--env", "production", "--lease-wait", "0")
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stdout + stderr
    assert _prod_versions(prod_server, name) == {"1": ("Production", "READY", "1")}
    assert sum(s == "FINISHED" for s, stage in _copy_runs(prod_server, name).values()) == 1


# -- 4. wrong credentials for the prod registry ------------------------------------------------

ADMIN = ("admin", "admin-Pa55word-for-faults")
WRONG = "wrong-Pa55word-for-faults"
AUTH_SETTINGS = PROD_SETTINGS + (
    "  username: ${PROD_MLFLOW_USERNAME}\n  password: ${PROD_MLFLOW_PASSWORD}\n"
)


@pytest.fixture(scope="module")
def auth_prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A prod registry that checks credentials (`mlflow server --app-name basic-auth`)."""
    workdir = tmp_path_factory.mktemp("mlflow-auth-prod")
    url, process = start_auth_server(workdir, *ADMIN)
    try:
        yield url
    finally:
        stop_server(process)


@pytest.fixture
def proxies(mlflow_server: str, prod_server: str) -> Iterator[list[RecordingProxy]]:
    """Recording proxies for dev and prod (a test may point the second elsewhere)."""
    made = [RecordingProxy(mlflow_server), RecordingProxy(prod_server)]
    try:
        yield made
    finally:
        for proxy in made:
            proxy.close()


def _no_secret(*outputs: str) -> None:
    import base64

    basic = base64.b64encode(f"{ADMIN[0]}:{WRONG}".encode()).decode()
    for output in outputs:
        assert WRONG not in output
        assert basic not in output


def test_wrong_credentials_for_prod_fail_in_one_line_and_write_nowhere(
    repo: Repo,
    mlflow_server: str,
    auth_prod: str,
    dev_source: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = _dev_model(mlflow_server, dev_source)
    _promoting(repo, name, AUTH_SETTINGS)  # staging's v1 is pending in dev too
    dev, prod = RecordingProxy(mlflow_server), RecordingProxy(auth_prod)
    try:
        monkeypatch.setenv("PROD_MLFLOW_URI", prod.url)
        monkeypatch.setenv("PROD_MLFLOW_USERNAME", ADMIN[0])
        monkeypatch.setenv("PROD_MLFLOW_PASSWORD", WRONG)
        run = make_runner(repo.root, tracking_uri=dev.url)
        for args in (("plan",), ("apply",), ("apply", "--format", "json"), ("plan", "--env",
                     "production", "--format", "json")):  # fmt: skip
            result = run(*args)
            assert result.exit_code == 1, (args, result.output)
            _no_secret(result.stdout, result.stderr)
            if "json" in args:
                error = json.loads(result.stdout)
                message = json.dumps(error)
            else:
                assert result.stdout == ""
                (message,) = result.stderr.splitlines()  # one line
            assert f"production: authentication failed at {prod.url}" in message, args
        assert dev.writes() == []  # staging's pending change was not applied either
        assert prod.writes() == []
        assert _stages(mlflow_server, name) == {"1": "None"}

        # staging alone never talks to prod: it works.
        prod.clear()
        staged = run("apply", "--env", "staging")
        assert staged.exit_code == 0, staged.output
        assert _stages(mlflow_server, name) == {"1": "Staging"}
        assert prod.requests == []
    finally:
        dev.close()
        prod.close()


# -- 5. a ${VAR} of the prod registry unset --------------------------------------------------------


def test_an_unset_password_variable_is_refused_before_any_request(
    repo: Repo, proxies: list[RecordingProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    dev, prod = proxies
    _promoting(repo, "churn-unset", AUTH_SETTINGS)
    monkeypatch.setenv("PROD_MLFLOW_URI", prod.url)
    monkeypatch.setenv("PROD_MLFLOW_USERNAME", ADMIN[0])
    monkeypatch.delenv("PROD_MLFLOW_PASSWORD", raising=False)
    run = make_runner(repo.root, tracking_uri=dev.url)
    for args in (("plan",), ("apply",), ("status",)):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        (line,) = result.stderr.splitlines()[:1]
        assert line.startswith("error: environments/production.yaml:6: registry.password:"), line
        assert "PROD_MLFLOW_PASSWORD" in line
    assert dev.requests == []
    assert prod.requests == []


# -- 6. the registries change under the apply -----------------------------------------------------


def test_a_source_version_deleted_after_the_plan_is_refused_and_nothing_is_made(
    repo: Repo,
    mlflow_server: str,
    prod_server: str,
    dev_source: tuple[str, str],
    proxies: list[RecordingProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _dev, prod = proxies
    name = _dev_model(mlflow_server, dev_source, versions=2)
    _promoting(repo, name)
    monkeypatch.setenv("PROD_MLFLOW_URI", prod.url)
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    assert run("plan", "--env", "production", "--detailed-exitcode").exit_code == 2
    _client(mlflow_server).delete_model_version(name, "1")
    refused = run("apply", "--env", "production")
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[0] == (
        f"error: environments/production/{name}.yaml:2: version: {name} v1 is not in "
        f"staging's registry ({mlflow_server})"
    )
    assert prod.writes() == []

    # Deleted while the apply runs, after its plan, as its download from dev begins (apply
    # downloads before it leases the prod model: nothing is leased or registered in prod).
    dev, _prod = proxies
    repo.pin("production", name, 2, **{"from": "staging"})
    repo.pin("staging", name, 2)
    repo.commit("v2")
    deleted: list[str] = []

    def delete_source(method: str, path: str) -> None:
        if "get-download-uri" in path and not deleted:
            _client(mlflow_server).delete_model_version(name, "2")
            deleted.append(path)

    dev.on_request = delete_source
    failed = make_runner(repo.root, tracking_uri=dev.url)("apply", "--env", "production")
    dev.on_request = None
    assert deleted
    assert failed.exit_code == 1, failed.output
    (line,) = failed.stderr.splitlines()
    assert line.startswith(f"error: cannot download the artifacts of {name} v2 at "), line
    assert _prod_versions(prod_server, name) == {}  # nothing registered
    assert _copy_runs(prod_server, name) == {}  # nothing uploaded
    assert prod.writes() == []  # not even a lease: the download comes first


def test_a_prod_model_deleted_by_hand_is_copied_again_without_uploading(
    repo: Repo,
    mlflow_server: str,
    prod_server: str,
    dev_source: tuple[str, str],
    proxies: list[RecordingProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _dev, prod = proxies
    name = _dev_model(mlflow_server, dev_source)
    _promoting(repo, name)
    monkeypatch.setenv("PROD_MLFLOW_URI", prod.url)
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    assert run("apply", "--env", "production").exit_code == 0
    _client(prod_server).delete_registered_model(name)
    prod.clear()
    again = run("apply", "--env", "production")
    assert again.exit_code == 0, again.output
    assert "copied staging v1 into production's registry as v1" in again.output
    assert _puts(prod) == 0  # its checked run is registered again, not uploaded again
    assert _prod_versions(prod_server, name) == {"1": ("Production", "READY", "1")}


def test_a_plan_reviewed_before_the_copy_is_the_plan_that_makes_it_and_unicode_names_copy(
    repo: Repo,
    mlflow_server: str,
    prod_server: str,
    dev_source: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = _dev_model(mlflow_server, dev_source, base="Churn modèle été 🚀")
    _promoting(repo, name)
    monkeypatch.setenv("PROD_MLFLOW_URI", prod_server)
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    reviewed = run("plan", "--env", "production", "--format", "json")
    assert reviewed.exit_code == 0, reviewed.output
    checksum = json.loads(reviewed.stdout)["checksum"]
    applied = run("apply", "--env", "production", "--expect-plan", checksum)
    assert applied.exit_code == 0, applied.output
    assert _prod_versions(prod_server, name) == {"1": ("Production", "READY", "1")}
    status = run("status", "--env", "production")
    assert status.exit_code == 0, status.output
    assert "v1 (staging v1)" in status.stdout
    assert run("plan", "--env", "production", "--detailed-exitcode").exit_code == 0


def test_ctrl_c_while_a_silent_registry_is_read_stops_at_once(
    repo: Repo, mlflow_server: str, dev_source: tuple[str, str]
) -> None:
    """A prod registry that accepts and never answers: one Ctrl-C stops apply while it still
    only reads, at once, with 130 and one line (before: it waited out the timeout, exit 1)."""
    import socket

    name = _dev_model(mlflow_server, dev_source)
    _promoting(repo, name)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        process = _start(repo, mlflow_server, f"http://127.0.0.1:{silent.getsockname()[1]}")
        time.sleep(4)  # well into the read of the silent registry (10 s per attempt)
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        _stdout, stderr = process.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert process.returncode == 130, stderr
    assert took < 5, took
    assert "SIGINT: stopped while reading the registries; nothing was changed" in stderr
    assert _stages(mlflow_server, name) == {"1": "None"}  # staging's change not applied either
