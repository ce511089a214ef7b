"""Ctrl-C (SIGINT) and CI cancelling a job (SIGTERM) during a real `reconciler apply` process
against the real server, slowed by the proxy: the models in flight are finished and recorded,
the leases released, the report printed in the chosen format, exit 130/143; a second signal
exits at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from reconciler.apply.lease import lease_of
from reconciler.pins.values import PRODUCTION
from reconciler.records.bookkeeping import applied_commit
from reconciler.registry.mlflow_registry import MlflowRegistry
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.proxy import RecordingProxy

pytestmark = pytest.mark.integration

TRANSITION = "transition-stage"


@pytest.fixture
def slow_proxy(proxy: RecordingProxy) -> Iterator[RecordingProxy]:
    """Every transition takes 0.4 s longer: time for a signal to arrive mid-apply."""
    proxy.on_request = lambda _method, path: time.sleep(0.4) if TRANSITION in path else None
    yield proxy
    proxy.on_request = None


def promotions(repo: Repo, seeder: Seeder, count: int) -> tuple[list[str], str]:
    names = [seeder.name(f"signal{i}") for i in range(count)]
    for name in names:
        seeder.model(name, [0.5, 0.6])
        seeder.stage(name, "1", PRODUCTION)
        repo.pin("production", name, 2)
    return names, repo.commit("promote")


def start_apply(repo: Repo, url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--tracking-uri", url, "apply", *args],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def wait_for_transitions(proxy: RecordingProxy, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sum(1 for _m, path in list(proxy.requests) if TRANSITION in path) >= count:
            return
        time.sleep(0.01)
    raise AssertionError("apply never reached its transitions")


def assert_recorded_and_unleased(url: str, names: list[str], commit: str) -> list[str]:
    """Every model promoted carries this commit; no model keeps a lease. Returns the promoted."""
    registry = MlflowRegistry(url)
    promoted = []
    for name in names:
        model = registry.read_model(name)
        assert model is not None
        assert lease_of(model) is None, name
        if model.versions["2"].stage == PRODUCTION:
            assert model.versions["1"].stage == ARCHIVED
            assert applied_commit(model, "production") == commit, name
            promoted.append(name)
        else:
            assert model.versions["1"].stage == PRODUCTION
    return promoted


@pytest.mark.parametrize(
    ("signum", "code", "output"),
    [(signal.SIGTERM, 143, "text"), (signal.SIGINT, 130, "json"), (signal.SIGHUP, 129, "text")],
)
def test_a_signal_finishes_the_model_in_flight_records_it_and_reports(
    repo: Repo,
    seeder: Seeder,
    slow_proxy: RecordingProxy,
    mlflow_server: str,
    signum: int,
    code: int,
    output: str,
) -> None:
    names, commit = promotions(repo, seeder, 5)
    process = start_apply(repo, slow_proxy.url, "--parallelism", "1", "--format", output)
    wait_for_transitions(slow_proxy, 1)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stdout + stderr
    name = signal.Signals(signum).name
    assert f"error: {name}: finishing the models in flight" in stderr
    assert f"error: apply interrupted by {name}" in stderr
    promoted = assert_recorded_and_unleased(mlflow_server, names, commit)
    assert 1 <= len(promoted) < len(names)
    if output == "json":
        records = json.loads(stdout)  # one document, nothing else on stdout
        outcomes = {r["model_name"]: r["outcome"] for r in records}
        assert {n for n, o in outcomes.items() if o == "applied"} == set(promoted)
        assert {o for n, o in outcomes.items() if n not in promoted} == {"not_attempted"}
    else:
        lines = stdout.splitlines()
        assert f"✓ production: {promoted[0]} v2 → Production, archives v1" in lines
        assert lines[-1].endswith(
            f"{len(names) - len(promoted)} not attempted; 0 already in sync. Stopped by {name}."
        )
    # What was not attempted is still planned; a second apply converges.
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    assert run("plan", "--detailed-exitcode").exit_code == 2
    again = run("apply")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert len(assert_recorded_and_unleased(mlflow_server, names, commit)) == len(names)


def test_a_second_signal_exits_at_once(
    repo: Repo, seeder: Seeder, slow_proxy: RecordingProxy, mlflow_server: str
) -> None:
    names, _commit = promotions(repo, seeder, 3)
    slow_proxy.on_request = lambda _m, path: time.sleep(10) if TRANSITION in path else None
    process = start_apply(repo, slow_proxy.url, "--parallelism", "1")
    wait_for_transitions(slow_proxy, 1)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=8)  # before the slowed transition answers
    assert process.returncode == 130
    assert "error: SIGINT again: exiting at once" in stderr
    assert "Apply:" not in stdout
    slow_proxy.on_request = None
    # Its lease names a process that is gone on this host: the next apply takes it at once.
    result = make_runner(repo.root, tracking_uri=mlflow_server)("apply", "--lease-wait", "0")
    assert result.exit_code == 0, result.stdout + result.stderr
    for name in names:
        assert seeder.stages(name) == {"1": ARCHIVED, "2": PRODUCTION}


def test_text_results_stream_as_each_change_lands(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy
) -> None:
    """A person watching a long apply sees each line when its step is done, not at the end."""
    import threading

    names, _commit = promotions(repo, seeder, 3)
    release = threading.Event()
    seen: list[str] = []

    def hold_second_transition(_method: str, path: str) -> None:
        if TRANSITION in path:
            seen.append(path)
            if len(seen) == 2:
                release.wait(120)

    proxy.on_request = hold_second_transition
    process = start_apply(repo, proxy.url, "--parallelism", "1")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed while the second transition is held
        assert first == f"✓ production: {names[0]} v2 → Production, archives v1\n"
        assert process.poll() is None
    finally:
        release.set()
    rest, stderr = process.communicate(timeout=120)
    proxy.on_request = None
    assert process.returncode == 0, rest + stderr
    assert (
        rest.splitlines()[-1] == "Apply: 3 applied, 0 failed, 0 not attempted; 0 already in sync."
    )


def test_a_reader_that_goes_away_never_costs_the_records(
    repo: Repo, seeder: Seeder, slow_proxy: RecordingProxy, mlflow_server: str
) -> None:
    """`reconciler apply | head -1`: the pipe closes under the streamed lines. Printing stops;
    the apply does not: every model is written, recorded and released."""
    names, commit = promotions(repo, seeder, 3)
    process = start_apply(repo, slow_proxy.url, "--parallelism", "1")
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before the first line
    _stdout, stderr = process.communicate(timeout=120)
    assert "internal error" not in stderr
    assert "Traceback" not in stderr
    assert process.returncode == 0, stderr
    assert len(assert_recorded_and_unleased(mlflow_server, names, commit)) == len(names)
