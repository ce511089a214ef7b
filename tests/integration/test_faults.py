"""Apply through a fault-injecting proxy in front of a real `mlflow server`: every run either
succeeds (by MLflow's retries or our re-read) or reports exactly what was and was not applied; a
second apply always converges, and no stage ever ends with two versions."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.proxy import Fault, RecordingProxy

pytestmark = pytest.mark.integration

TRANSITION = "transition-stage"


def three_promotions(repo: Repo, seeder: Seeder) -> list[str]:
    """Three models with v1 in Production; the pins move each to v2: three transitions."""
    names = [seeder.name(f"fault{i}") for i in range(3)]
    for name in names:
        seeder.model(name, [0.5, 0.6])
        seeder.stage(name, "1", PRODUCTION)
        repo.pin("production", name, 2)
    return names


def assert_converged(seeder: Seeder, names: list[str]) -> None:
    for name in names:
        assert seeder.stages(name) == {"1": ARCHIVED, "2": PRODUCTION}, name


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", TRANSITION, status=503, skip=1),
        Fault("status", TRANSITION, status=500, skip=1),
        Fault("status", TRANSITION, status=429, retry_after="1", skip=1),
        Fault("status", TRANSITION, status=429, skip=1),
        Fault("reset", TRANSITION, skip=1),
        Fault("lose_response", TRANSITION, skip=1),
    ],
    ids=["503", "500", "429-retry-after", "429", "reset", "lost-answer-once"],
)
def test_a_transient_fault_is_retried(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy, fault: Fault
) -> None:
    names = three_promotions(repo, seeder)
    proxy.faults.append(fault)
    result = make_runner(repo.root, tracking_uri=proxy.url)("apply")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert fault.injected == fault.skip + 1  # the fault did happen
    assert_converged(seeder, names)


def test_a_hang_past_the_timeout_is_retried(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = three_promotions(repo, seeder)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    proxy.faults.append(Fault("hang", TRANSITION, hang_seconds=4, skip=1))
    result = make_runner(repo.root, tracking_uri=proxy.url)("apply")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert_converged(seeder, names)


def test_answers_lost_on_every_retry_are_confirmed_by_reading(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy
) -> None:
    names = three_promotions(repo, seeder)
    proxy.faults.append(Fault("lose_response", TRANSITION, times=10, skip=1))
    result = make_runner(repo.root, tracking_uri=proxy.url)("apply", "--parallelism", "1")
    assert result.exit_code == 0, result.stdout + result.stderr
    second = result.stdout.splitlines()[1]
    assert second.startswith(
        f"✓ production: {names[1]} v2 → Production, archives v1 (confirmed by re-reading after: cannot reach the registry at {proxy.url}"
    )
    assert_converged(seeder, names)


def test_a_persistent_failure_reports_what_was_applied_and_a_second_apply_converges(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy
) -> None:
    names = three_promotions(repo, seeder)
    proxy.faults.append(Fault("status", TRANSITION, status=500, times=100, skip=1))
    run = make_runner(repo.root, tracking_uri=proxy.url)
    result = run("apply", "--format", "json", "--parallelism", "1")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert [r["outcome"] for r in records] == ["applied", "failed", "not_attempted"]
    assert seeder.stages(names[0]) == {"1": ARCHIVED, "2": PRODUCTION}
    assert seeder.stages(names[1]) == {"1": PRODUCTION, "2": "None"}
    assert seeder.stages(names[2]) == {"1": PRODUCTION, "2": "None"}
    proxy.faults.clear()
    again = run("apply")
    assert again.exit_code == 0, again.stderr
    assert_converged(seeder, names)


def test_registry_down_mid_apply_then_back(
    repo: Repo, seeder: Seeder, proxy: RecordingProxy
) -> None:
    """Everything after the first transition is reset (the server went away): apply stops and says
    what it could not do; the lease it could not release expires; then a second apply converges."""
    names = three_promotions(repo, seeder)
    proxy.faults.append(Fault("reset", "/api/", times=10_000, after=TRANSITION))
    run = make_runner(repo.root, tracking_uri=proxy.url, lease_ttl=3)
    result = run("apply", "--parallelism", "1")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"✓ production: {names[0]} v2 → Production, archives v1"
    assert lines[1].startswith(
        f"✗ production: {names[1]} v2 → Production, archives v1: FAILED: not written: could not "
        "re-read it first: cannot reach the registry"
    )

    assert lines[2] == f"- production: {names[2]} v2 → Production, archives v1: not attempted"
    assert lines[3].startswith(
        f"✗ could not record the apply (audit, applied commit): {names[0]}: "
    )
    assert "cannot reach" in lines[3]
    assert "could not release the lease (it expires by itself)" in result.stderr
    proxy.faults.clear()
    again = run("apply")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert_converged(seeder, names)
