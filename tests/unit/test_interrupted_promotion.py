"""An apply killed between its transition and its audit record (issue 15 §9): the next apply
records the move as the promotion (or rollback) it was, with the versions it replaced, and
sends its notification. Before, it was recorded as `adopt` with `previous: []`, and nobody was
told."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag, state_of
from tests.conftest import Repo, make_runner
from tests.unit.test_bookkeeping import Killed, KilledAtAudit
from tests.unit.test_notify import Hook


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


@pytest.mark.parametrize(("serving", "pinned", "action"), [(1, 3, "promote"), (3, 2, "rollback")])
def test_a_move_killed_before_its_record_is_recorded_as_what_it_was(
    repo: Repo,
    hook: Hook,
    monkeypatch: pytest.MonkeyPatch,
    serving: int,
    pinned: int,
    action: str,
) -> None:
    registry = KilledAtAudit()
    for _ in range(3):
        registry.create_version("m")
    registry.transition_stage("m", str(serving), PRODUCTION, archive_existing=True)
    repo.pin("production", "m", pinned)
    commit = repo.commit(f"m v{pinned}")
    registry.audit_kill = ("m", "production")
    with pytest.raises(Killed):
        make_runner(repo.root, registry, lease_ttl=0.05)("apply")
    registry.dead, registry.audit_kill = False, None
    assert registry.read_model("m").versions[str(pinned)].stage == PRODUCTION  # type: ignore[union-attr]
    time.sleep(0.1)  # the lease expired: the CI job runs again

    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", hook.url)
    run = make_runner(repo.root, registry)
    plan = run("plan")
    assert (
        f"  + production: m v{pinned}: record applied commit and ownership + {action} audit "
        f"record (moved there by an apply of commit {commit[:12]} whose records never "
        "completed)"
    ) in plan.stdout
    result = run("apply")
    assert result.exit_code == 0, result.output
    found = registry.read_model("m")
    assert found is not None
    [record] = audit.parse(found.versions[str(pinned)].tags[audit_tag("production")])
    assert (record.action, record.previous, record.commit) == (action, (str(serving),), commit)
    state = state_of(found)
    assert state.environments["production"].commit == commit
    assert (state.attempted, state.moves, state.lease) == ({}, {}, None)
    [message] = hook.bodies
    title = "Model Rolled Back" if action == "rollback" else "Model Promoted"
    assert message["text"].startswith(f"*{title}: m*\n")
    assert f"Previous Version: {serving}\n" in message["text"]
    # Recorded once: the next apply writes nothing and tells nobody again.
    registry.writes.clear()
    assert run("apply").exit_code == 0
    assert registry.writes == []
    assert len(hook.bodies) == 1
