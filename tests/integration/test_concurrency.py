"""Racing `reconciler apply` processes from two clones, and a server killed and restarted in the
middle of an apply: the end state always holds exactly the pinned version per stage."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.proxy import RecordingProxy
from tests.support.server import start_or_fail, stop_server

pytestmark = pytest.mark.integration

RECONCILER = str(Path(sys.executable).parent / "reconciler")


def clone(repo: Repo, name: str) -> Path:
    target = repo.root.parent / name
    subprocess.run(["git", "clone", "-q", str(repo.root), str(target)], check=True)
    return target


def test_racing_applies_from_two_clones(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    names = [seeder.name(f"race{i}") for i in range(3)]
    for name in names:
        seeder.model(name, [0.5, 0.6, 0.7])
        seeder.stage(name, "1", PRODUCTION)
        seeder.stage(name, "2", STAGING)
        repo.pin("production", name, 2)
        repo.pin("staging", name, 3)
    repo.commit("promote")
    clones = [clone(repo, "clone-a"), clone(repo, "clone-b")]
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    processes = [
        subprocess.Popen(
            [RECONCILER, "apply", *[arg for n in names for arg in ("--model", n)]],
            cwd=clones[i % 2],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    codes = [process.returncode for process in processes]
    assert codes == [0, 0, 0, 0], outputs
    applied = [out for out, _err in outputs if "✓" in out]
    assert len(applied) == 1, outputs  # one writer did the work; the others found nothing to do
    for name in names:
        assert seeder.stages(name) == {"1": ARCHIVED, "2": PRODUCTION, "3": STAGING}


@pytest.fixture
def own_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, int, list[subprocess.Popen[bytes]]]]:
    """A server of this test's own, which the test may kill and start again on the same port."""
    workdir = tmp_path_factory.mktemp("mlflow-restart")
    from tests.support.server import free_port

    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []
    _url, process = start_or_fail(workdir, port=port)
    processes.append(process)
    try:
        yield workdir, port, processes
    finally:
        for process in processes:
            stop_server(process)


def test_server_killed_and_restarted_mid_apply(
    repo: Repo, own_server: tuple[Path, int, list[subprocess.Popen[bytes]]]
) -> None:
    workdir, port, processes = own_server
    url = f"http://127.0.0.1:{port}"
    seeder = Seeder(url)
    names = [seeder.name(f"restart{i}") for i in range(6)]
    for name in names:
        seeder.model(name, [0.5, 0.6])
        seeder.stage(name, "1", PRODUCTION)
        repo.pin("production", name, 2)
    proxy = RecordingProxy(url)

    def kill_after_first_transition() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("transition-stage" in path for _m, path in list(proxy.requests)):
                stop_server(processes[0])
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_after_first_transition)
    killer.start()
    try:
        result = make_runner(repo.root, tracking_uri=proxy.url, lease_ttl=2)("apply")
    finally:
        killer.join()
        proxy.close()
    assert result.exit_code == 1
    assert "cannot reach the registry" in result.stdout + result.stderr
    _url, restarted = start_or_fail(workdir, port=port)
    processes.append(restarted)
    time.sleep(2)  # the dead apply's lease (ttl 2 s) runs out
    again = make_runner(repo.root, tracking_uri=url)("apply")
    assert again.exit_code == 0, again.stdout + again.stderr
    for name in names:
        assert seeder.stages(name) == {"1": ARCHIVED, "2": PRODUCTION}
    assert make_runner(repo.root, tracking_uri=url)("plan", "--detailed-exitcode").exit_code == 0
