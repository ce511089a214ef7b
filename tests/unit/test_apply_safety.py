"""Apply's safety nets on the fake registry: the lease, the permission check, writes of unknown
outcome, verify-and-repair."""

from __future__ import annotations

import json

import pytest

from reconciler.bookkeeping import LEASE_TAG
from reconciler.bookkeeping import STATE_MODEL as LEASE_MODEL
from reconciler.errors import RegistryPermissionDenied, RegistryUnreachable
from reconciler.lease import Lease, LeaseHeld, LeaseRecord
from reconciler.registry.fake import FakeRegistry
from reconciler.state import ARCHIVED, PRODUCTION, STAGING, RegisteredModel
from tests.conftest import Repo, RunCli, make_runner


def stages(fake: FakeRegistry, model: str = "m") -> dict[str, str]:
    return {v: mv.stage for v, mv in fake.read([model]).models[model].versions.items()}


def stage_writes(fake: FakeRegistry) -> list[tuple[str, ...]]:
    return [w for w in fake.writes if w[0] in ("transition", "set_alias")]


@pytest.fixture
def promotion(repo: Repo, fake: FakeRegistry) -> FakeRegistry:
    """m: v1 in Production, v2 new; the pin moves production to v2."""
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    repo.pin("production", "m", 2)
    return fake


def hold_lease(fake: FakeRegistry, holder: str, expires_in: float) -> None:
    import time

    now = time.time()
    record = LeaseRecord(holder, "abc123def4567890", now - 5, now + expires_in)
    fake.set_model_tag(LEASE_MODEL, LEASE_TAG, record.to_json(), create_model=True)
    fake.writes.clear()


def test_a_held_lease_blocks_apply_and_names_the_holder(
    run: RunCli, promotion: FakeRegistry
) -> None:
    hold_lease(promotion, "ci-bot@runner-7 pid 42 (deadbeef)", expires_in=100)
    result = run("apply", "--lease-wait", "0")
    assert result.exit_code == 1
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith(
        "error: another apply is changing the registry (lease held by ci-bot@runner-7 pid 42 "
        "(deadbeef), commit abc123def456, taken 5 s ago, expires in "
    )
    assert message.endswith(
        "gave up after waiting 0 s. Retry when it is done, or wait for the lease to expire if that apply died."
    )
    assert stage_writes(promotion) == []
    assert stages(promotion) == {"1": PRODUCTION, "2": "None"}
    # The other apply's lease is left alone.
    assert json.loads(promotion.get_model_tag(LEASE_MODEL, LEASE_TAG) or "")["holder"].startswith(
        "ci-bot"
    )


def test_an_expired_lease_is_taken_over_and_released(run: RunCli, promotion: FakeRegistry) -> None:
    hold_lease(promotion, "crashed-job", expires_in=-1)
    result = run("apply", "--lease-wait", "0")
    assert result.exit_code == 0, result.stderr
    assert stages(promotion) == {"1": ARCHIVED, "2": PRODUCTION}
    assert promotion.get_model_tag(LEASE_MODEL, LEASE_TAG) is None


def test_lease_is_released_after_a_failed_apply(repo: Repo) -> None:
    class Failing(FakeRegistry):
        def transition_stage(
            self, model: str, version: str, stage: str, *, archive_existing: bool
        ) -> None:
            from reconciler.errors import RegistryError

            raise RegistryError("boom")

    registry = Failing()
    registry.create_version("m")
    repo.pin("production", "m", 1)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert registry.get_model_tag(LEASE_MODEL, LEASE_TAG) is None
    assert any(w[0] == "delete_model_tag" for w in registry.writes)


def test_in_sync_apply_writes_nothing_at_all(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m", stage=PRODUCTION)
    repo.pin("production", "m", 1)
    assert run("apply").exit_code == 0
    assert fake.writes == []  # no lease, no tag, no stage


def test_plan_tag_records_the_plan_before_any_stage_write(
    run: RunCli, promotion: FakeRegistry
) -> None:
    assert run("apply").exit_code == 0
    kinds = [w[0] for w in promotion.writes]
    assert kinds.index("set_model_tag") < kinds.index("transition")
    assert (promotion.get_model_tag("m", "reconciler.last_plan") or "").split(" by ")[0].isalnum()


class ReadOnly(FakeRegistry):
    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        raise RegistryPermissionDenied("permission denied: cannot tag")


def test_permission_denied_before_any_change(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ReadOnly()
    registry.create_version("m")
    repo.pin("production", "m", 1)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "viewer")
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: permission denied: user 'viewer' may not change registered model 'm' "
        "(stages and aliases need write permission: EDIT in MLflow's basic-auth); nothing was changed\n"
    )
    assert registry.writes == []


class LostAnswers(FakeRegistry):
    """The server applies the write but the answer never arrives (a timeout, a reset)."""

    def __init__(self, apply_first: bool, reads_fail: bool = False) -> None:
        super().__init__()
        self.apply_first = apply_first
        self.reads_fail = reads_fail
        self.armed = False

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        if self.apply_first:
            super().transition_stage(model, version, stage, archive_existing=archive_existing)
        self.armed = self.reads_fail
        raise RegistryUnreachable("cannot reach the registry at http://127.0.0.1:1: timed out")

    def read_model(self, model: str) -> RegisteredModel | None:
        if self.armed:
            raise RegistryUnreachable("cannot reach the registry at http://127.0.0.1:1: timed out")
        return super().read_model(model)


def test_a_write_applied_despite_a_transport_error_is_confirmed(repo: Repo) -> None:
    registry = LostAnswers(apply_first=True)
    registry.create_version("m")
    repo.pin("production", "m", 1)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "✓ production: m v1 → Production (confirmed by re-reading after: "
        "cannot reach the registry at http://127.0.0.1:1: timed out)"
    )


def test_a_write_lost_on_the_way_is_a_failure(repo: Repo) -> None:
    registry = LostAnswers(apply_first=False)
    registry.create_version("m")
    registry.create_version("n")
    repo.pin("production", "m", 1)
    repo.pin("production", "n", 1)
    result = make_runner(repo.root, registry)("apply", "--format", "json")
    assert result.exit_code == 1
    records = json.loads(result.stdout)
    assert [(r["model_name"], r["outcome"]) for r in records] == [
        ("m", "failed"),
        ("n", "not_attempted"),
    ]


def test_an_unknown_outcome_is_reported_as_unknown(repo: Repo) -> None:
    registry = LostAnswers(apply_first=True, reads_fail=True)
    registry.create_version("m")
    repo.pin("production", "m", 1)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "? production: m v1 → Production: OUTCOME UNKNOWN: cannot reach the registry at "
        "http://127.0.0.1:1: timed out; the registry could not be re-read",
        "Apply: 0 applied, 0 failed, 1 unknown, 0 not attempted; 0 already in sync.",
    ]


class RacingWriter(FakeRegistry):
    """Another writer slips v3 into Production and takes the alias right after each of our writes."""

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        super().transition_stage(model, version, stage, archive_existing=archive_existing)
        if stage == PRODUCTION and not getattr(self, "raced_stage", False):
            self.raced_stage = True
            self.force_stage(model, "3", PRODUCTION)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        super().set_alias(model, alias, version)
        if not getattr(self, "raced_alias", False):
            self.raced_alias = True
            super().set_alias(model, alias, "3")


def test_verify_and_repair_after_a_racing_writer(repo: Repo) -> None:
    registry = RacingWriter()
    for stage in (PRODUCTION, STAGING, "None"):
        registry.create_version("m", stage=stage)
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    repo.pin("production", "m", 2)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "✓ production: m v2 → Production, archives v1",
        "✓ production: m @champion → v2 (new)",
        "repaired (the registry was off the plan after applying: another writer?):",
        "  ✓ production: m archive v3 (extra in Production)",
        "  ✓ production: m @champion → v2 (from v3)",
        "Apply: 2 applied, 0 failed, 0 not attempted; 2 repairs; 0 already in sync.",
    ]
    assert stages(registry) == {"1": ARCHIVED, "2": PRODUCTION, "3": ARCHIVED}
    assert registry.read(["m"]).models["m"].aliases == {"champion": "2"}
    records = json.loads(make_runner(repo.root, registry)("apply", "--format", "json").stdout)
    assert records[0]["already_promoted"] is True


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Interloper(FakeRegistry):
    """Overwrites the lease with its own record the moment anyone else writes one."""

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        super().set_model_tag(model, key, value, create_model=create_model)
        if key == LEASE_TAG and "interloper" not in value:
            record = LeaseRecord("interloper", None, 1_000.0, 1_000.0 + 30)
            super().set_model_tag(model, key, record.to_json())


def test_losing_the_lease_race_backs_off_then_waits_until_expiry() -> None:
    clock = FakeClock()
    registry = Interloper()
    waits: list[str] = []
    lease = Lease(
        registry,
        "me",
        None,
        wait=10,
        settle=1,
        clock=clock.time,
        sleep=clock.sleep,
        on_wait=waits.append,
    )
    with pytest.raises(LeaseHeld, match="lease held by interloper"):
        lease.acquire()
    assert not lease.held
    assert waits == [
        "waiting for the registry lease held by interloper, taken 1 s ago, expires in 29 s"
    ]
    assert clock.now >= 1_010


def test_lease_renews_before_it_runs_out() -> None:
    clock = FakeClock()
    registry = FakeRegistry()
    lease = Lease(registry, "me", "c0ffee", ttl=10, settle=0, clock=clock.time, sleep=clock.sleep)
    lease.acquire()
    first = LeaseRecord.parse(registry.get_model_tag(LEASE_MODEL, LEASE_TAG))
    clock.now += 6
    lease.renew_if_needed()
    renewed = LeaseRecord.parse(registry.get_model_tag(LEASE_MODEL, LEASE_TAG))
    assert first is not None
    assert renewed is not None
    assert renewed.expires == first.expires + 6
    assert renewed.acquired == first.acquired
    lease.release()
    assert registry.get_model_tag(LEASE_MODEL, LEASE_TAG) is None


def test_release_leaves_someone_elses_lease() -> None:
    clock = FakeClock()
    registry = FakeRegistry()
    lease = Lease(registry, "me", None, ttl=10, settle=0, clock=clock.time, sleep=clock.sleep)
    lease.acquire()
    other = LeaseRecord("next-job", None, clock.now, clock.now + 100)
    registry.set_model_tag(LEASE_MODEL, LEASE_TAG, other.to_json())
    lease.release()
    assert registry.get_model_tag(LEASE_MODEL, LEASE_TAG) == other.to_json()


@pytest.mark.parametrize("garbage", ["", "not json", '{"holder": 1}', "[]"])
def test_an_unreadable_lease_counts_as_free(garbage: str) -> None:
    assert LeaseRecord.parse(garbage) is None
