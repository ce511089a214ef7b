"""Apply's safety nets on the fake registry: the lease, the permission check, writes of unknown
outcome, verify-and-repair."""

from __future__ import annotations

import json
import re

import pytest

from reconciler.apply.lease import Lease, LeaseHeld, LeaseRecord, lease_of, this_host
from reconciler.errors import RegistryPermissionDenied, RegistryUnreachable
from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.records.bookkeeping import STATE_TAG, ModelState, parse_state, state_of
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ARCHIVED, RegisteredModel
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


def hold_lease(
    fake: FakeRegistry,
    holder: str,
    expires_in: float,
    model: str = "m",
    host: str | None = None,
    pid: int | None = None,
) -> None:
    import time

    now = time.time()
    record = LeaseRecord(holder, "abc123def4567890", now - 5, now + expires_in, host, pid)
    fake.set_model_tag(model, STATE_TAG, ModelState(lease=vars(record)).to_json())
    fake.writes.clear()


def lease(fake: FakeRegistry, model: str = "m") -> LeaseRecord | None:
    found = fake.read_model(model)
    return lease_of(found)


def test_a_held_lease_blocks_apply_and_names_the_holder(
    run: RunCli, promotion: FakeRegistry
) -> None:
    hold_lease(promotion, "ci-bot@runner-7 pid 42 (deadbeef)", expires_in=100)
    result = run("apply", "--lease-wait", "0")
    assert result.exit_code == 1
    assert result.stdout == ""
    message = result.stderr.strip()
    assert re.match(
        r"error: another apply is changing registered model 'm' \(lease held by ci-bot@runner-7 "
        r"pid 42 \(deadbeef\), commit abc123def456, taken \d+ s ago, expires in \d+ s\)",
        message,
    )
    assert message.endswith(
        "gave up after waiting 0 s. Retry when it is done, or `reconciler unlock` if that apply died."
    )
    assert stage_writes(promotion) == []
    assert stages(promotion) == {"1": PRODUCTION, "2": "None"}
    # The other apply's lease is left alone.
    held = lease(promotion)
    assert held is not None
    assert held.holder.startswith("ci-bot")


def test_an_expired_lease_is_taken_over_and_released(run: RunCli, promotion: FakeRegistry) -> None:
    hold_lease(promotion, "crashed-job", expires_in=-1)
    result = run("apply", "--lease-wait", "0")
    assert result.exit_code == 0, result.stderr
    assert stages(promotion) == {"1": ARCHIVED, "2": PRODUCTION}
    assert lease(promotion) is None


def test_a_lease_whose_process_is_gone_on_this_host_is_taken_over_at_once(
    run: RunCli, promotion: FakeRegistry
) -> None:
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    hold_lease(promotion, "killed-job", 100, host=this_host(), pid=int(finished.stdout))
    result = run("apply", "--lease-wait", "0")
    assert result.exit_code == 0, result.stderr
    assert stages(promotion) == {"1": ARCHIVED, "2": PRODUCTION}
    assert lease(promotion) is None


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("pid:[1]", id="another-pid-namespace"),
        pytest.param(None, id="hostname-only"),
    ],
)
def test_a_holder_in_another_pid_namespace_is_never_presumed_dead(
    run: RunCli, promotion: FakeRegistry, where: str | None
) -> None:
    """A container with host networking shares the hostname, not the pids: its holder's pid
    means nothing here, so only expiry frees its lease."""
    import socket
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    if where is not None:
        host = " ".join([*this_host().split(" ")[:-1], where])
    assert host != this_host()
    hold_lease(promotion, "container-job", 100, host=host, pid=int(finished.stdout))
    result = run("apply", "--lease-wait", "0")
    assert result.exit_code == 1
    assert "lease held by container-job" in result.stderr
    assert stages(promotion) == {"1": PRODUCTION, "2": "None"}


def test_a_live_process_on_this_host_keeps_its_lease(run: RunCli, promotion: FakeRegistry) -> None:
    import os

    hold_lease(promotion, "other-job", 100, host=this_host(), pid=os.getppid())
    result = run("apply", "--lease-wait", "0")
    assert result.exit_code == 1
    assert "lease held by other-job" in result.stderr
    assert stages(promotion) == {"1": PRODUCTION, "2": "None"}


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
    assert lease(registry) is None
    assert registry.writes[-1] == ("set_model_tag", "m", STATE_TAG)


def test_an_apply_after_an_apply_writes_nothing_at_all(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m")
    repo.pin("production", "m", 1)
    repo.commit("pin")
    assert run("apply").exit_code == 0
    fake.writes.clear()
    assert run("apply").exit_code == 0
    assert fake.writes == []  # no lease, no tag, no stage


def test_the_lease_proves_permission_before_any_stage_write_and_the_plan_is_recorded(
    repo: Repo, run: RunCli, promotion: FakeRegistry
) -> None:
    checksum = json.loads(run("plan", "--format", "json").stdout)["checksum"]
    assert run("apply").exit_code == 0
    # Three writes for one change (issue 11): the lease announcing the records, the transition,
    # the audit record naming the lease (which releases it).
    assert promotion.writes == [
        ("set_model_tag", "m", STATE_TAG),  # the lease: proves we may write m
        ("transition", "m", "2", PRODUCTION, "True"),
        ("set_version_tag", "m", "2", "reconciler.audit.production"),
    ]
    found = promotion.read_model("m")
    assert found is not None
    record = state_of(found).environments["production"]
    assert record.plan == checksum
    assert lease(promotion) is None
    # As written, the tag still holds the lease: its audit record is what released it.
    assert parse_state(found.tags).lease is not None


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
    """Overwrites a lease with its own record the moment anyone else writes one on model b."""

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        super().set_model_tag(model, key, value, create_model=create_model)
        if model == "b" and '"holder":"me"' in value:
            record = LeaseRecord("interloper", None, 1_000.0, 1_000.0 + 30)
            super().set_model_tag(model, key, ModelState(lease=vars(record)).to_json())


def test_losing_the_lease_race_backs_off_then_waits_until_expiry() -> None:
    clock = FakeClock()
    registry = Interloper()
    registry.create_model("a")
    registry.create_model("b")
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
    with pytest.raises(LeaseHeld, match=r"model 'b' .lease held by interloper"):
        lease.acquire(["a", "b"])
    assert not lease.held
    assert waits == [
        "waiting for the lease on b held by interloper, taken 1 s ago, expires in 29 s"
    ]
    assert clock.now >= 1_010
    # A partial win is given back: a is free again (no hold-and-wait, so no deadlock).
    assert lease_of(registry.read(["a"]).models["a"]) is None
    taken = lease_of(registry.read(["b"]).models["b"])  # the winner's record is left alone
    assert taken is not None
    assert taken.holder == "interloper"


def test_lease_renews_before_it_runs_out() -> None:
    clock = FakeClock()
    registry = FakeRegistry()
    registry.create_model("m")
    lease = Lease(registry, "me", "c0ffee", ttl=10, settle=0, clock=clock.time, sleep=clock.sleep)
    lease.acquire(["m"])
    first = lease_of_m(registry)
    clock.now += 6
    lease.renew_if_needed()
    renewed = lease_of_m(registry)
    assert first is not None
    assert renewed is not None
    assert renewed.expires == first.expires + 6
    assert renewed.acquired == first.acquired
    lease.release()
    assert lease_of_m(registry) is None


def lease_of_m(registry: FakeRegistry) -> LeaseRecord | None:
    return lease_of(registry.read(["m"]).models["m"])


def test_release_leaves_someone_elses_lease() -> None:
    clock = FakeClock()
    registry = FakeRegistry()
    registry.create_model("m")
    lease = Lease(registry, "me", None, ttl=10, settle=0, clock=clock.time, sleep=clock.sleep)
    lease.acquire(["m"])
    other = LeaseRecord("next-job", None, clock.now, clock.now + 100)
    registry.set_model_tag("m", STATE_TAG, ModelState(lease=vars(other)).to_json())
    lease.release()
    assert lease_of_m(registry) == other


@pytest.mark.parametrize("garbage", ["", "not json", '{"holder": 1}', "[]"])
def test_an_unreadable_lease_counts_as_free(garbage: str) -> None:
    assert LeaseRecord.parse(garbage) is None


def test_unlock_removes_dead_leases_and_keeps_live_ones_unless_forced(
    run: RunCli, fake: FakeRegistry
) -> None:
    import os

    for model in ("dead", "live", "old", "remote"):
        fake.create_model(model)
    hold_lease(fake, "crashed-job", -1, model="dead")
    hold_lease(fake, "running-job", 100, model="live", host=this_host(), pid=os.getpid())
    hold_lease(fake, "runner-7", 100, model="remote", host="ci-runner-7 1a2b3c4d pid:[1]", pid=9)
    legacy = LeaseRecord("older-version", None, 1.0, 2.0)
    fake.set_model_tag("reconciler-state", "reconciler.lease", legacy.to_json(), create_model=True)
    result = run("unlock")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dead: lease removed (expired): crashed-job, commit abc123def456")
    assert lines[1].startswith("live: lease kept (held by a live apply; --force removes it)")
    assert lines[2].startswith("reconciler-state: lease removed (expired): older-version")
    assert lines[3].startswith(
        "remote: lease kept (held by an apply elsewhere (whether it still runs cannot be told "
        "from here); --force removes it)"
    )
    assert lines[4] == "Unlock: 2 removed, 2 kept."
    assert lease(fake, "dead") is None
    assert lease(fake, "live") is not None
    assert fake.get_model_tag("reconciler-state", "reconciler.lease") is None
    forced = json.loads(run("unlock", "--model", "live", "--force", "--format", "json").stdout)
    assert [(u["model"], u["removed"], u["why"]) for u in forced] == [("live", True, "forced")]
    assert lease(fake, "live") is None
    assert run("unlock", "--model", "remote", "--force").exit_code == 0
    assert run("unlock").stdout == "Unlock: 0 removed, 0 kept.\n"
