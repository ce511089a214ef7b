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
from reconciler.registry.fake import FakeRegistry
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


class MovedByHandUnderTheLease(FakeRegistry):
    """Someone promotes v2 by hand right after our lease is written: the apply's own announced
    move is not an interrupted one, so what it finds in sync is an adoption, not its promotion."""

    armed = False

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        super().set_model_tag(model, key, value, create_model=create_model)
        if self.armed:
            self.armed = False
            self.transition_stage(model, "2", PRODUCTION, archive_existing=True)


def test_a_move_made_by_someone_else_under_our_lease_is_not_claimed(
    repo: Repo, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = MovedByHandUnderTheLease()
    for _ in range(2):
        registry.create_version("m")
    registry.transition_stage("m", "1", PRODUCTION, archive_existing=True)
    repo.pin("production", "m", 1)
    repo.commit("m v1")
    run = make_runner(repo.root, registry)
    assert run("apply").exit_code == 0
    repo.pin("production", "m", 2)
    repo.commit("m v2")
    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", hook.url)
    registry.armed = True
    result = run("apply")
    assert result.exit_code == 0, result.output
    assert "+ adopt audit record (the pin changed since the recorded commit" in result.stdout
    found = registry.read_model("m")
    assert found is not None
    [record] = audit.parse(found.versions["2"].tags[audit_tag("production")])
    assert (record.action, record.previous) == ("adopt", ())
    assert hook.bodies == []
