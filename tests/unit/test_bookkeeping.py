"""Bookkeeping model by model (a SIGKILL between models leaves the fence true for every model
written), adoption of in-sync pins (recorded once, then zero writes), and old tags read back."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import Result

from reconciler.pins.values import PRODUCTION
from reconciler.records import audit
from reconciler.records.bookkeeping import STATE_TAG, audit_tag, parse_state, state_of
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, RunCli, make_runner, recorded_commit, recorded_owner
from tests.support.faulty import FailsTransition


class Killed(BaseException):
    """What SIGKILL does to a process, in-process: nothing after it runs (no cleanup writes)."""


class KilledAtModel(FakeRegistry):
    """Dies on the first stage write to `model`; every write after that is lost with it."""

    def __init__(self) -> None:
        super().__init__()
        self.kill_at: str | None = None
        self.dead = False

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        if self.dead or model == self.kill_at:
            self.dead = True
            raise Killed
        super().transition_stage(model, version, stage, archive_existing=archive_existing)

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        if self.dead:
            raise Killed
        super().set_model_tag(model, key, value, create_model=create_model)

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        if self.dead:
            raise Killed
        super().set_version_tag(model, version, key, value)


def stages(fake: FakeRegistry, model: str) -> dict[str, str]:
    return {v: mv.stage for v, mv in fake.read([model]).models[model].versions.items()}


def test_a_kill_between_models_leaves_the_fence_true_for_the_models_written(repo: Repo) -> None:
    registry = KilledAtModel()
    for model in ("a", "b"):
        registry.create_version(model)
        registry.create_version(model)
        repo.pin("production", model, 1)
    old = repo.commit("v1 everywhere")
    run = make_runner(repo.root, registry)
    assert run("apply", "--parallelism", "1").exit_code == 0
    for model in ("a", "b"):
        repo.pin("production", model, 2)
    new = repo.commit("v2 everywhere")
    registry.kill_at = "b"
    with pytest.raises(Killed):
        run("apply", "--parallelism", "1")
    # a was written and recorded before the kill; b was not touched.
    assert stages(registry, "a") == {"1": ARCHIVED, "2": PRODUCTION}
    assert stages(registry, "b") == {"1": PRODUCTION, "2": "None"}
    assert recorded_commit(registry, "a", "production") == new
    assert recorded_commit(registry, "b", "production") == old
    # An older run finishing last must not roll a back.
    registry.dead, registry.kill_at = False, None
    repo.git("checkout", "-q", old)
    result = run("apply", "--model", "a")
    assert result.exit_code == 4
    assert "refusing to apply commit" in result.stderr
    assert "a was last applied" in result.stderr
    assert stages(registry, "a") == {"1": ARCHIVED, "2": PRODUCTION}


@pytest.fixture
def live(repo: Repo, fake: FakeRegistry) -> str:
    """A registry moved by hand: m v2 in Production, n v1 in Production; pins that match."""
    fake.create_version("m")
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("n", stage=PRODUCTION)
    repo.pin("production", "m", 2)
    repo.pin("production", "n", 1)
    return repo.commit("adopt the registry")


def test_an_in_sync_pin_without_bookkeeping_is_adopted_once(
    repo: Repo, run: RunCli, fake: FakeRegistry, live: str
) -> None:
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 0  # nothing to change: recording is not drift
    assert plan.stdout.splitlines()[3:6] == [
        "record (in sync; apply records its applied commit and ownership, moves nothing)",
        "  + production: m v2: record applied commit and ownership + adopt audit record "
        "(nothing recorded)",
        "  + production: n v1: record applied commit and ownership + adopt audit record "
        "(nothing recorded)",
    ]
    assert (
        "Plan: 0 to change, 2 in sync (0 transitions, 0 archives, 0 alias moves); 2 to record."
        in plan.stdout
    )
    assert len(json.loads(run("plan", "--format", "json").stdout)["records"]) == 2

    result = run("apply")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "Apply: 0 applied, 0 failed, 0 not attempted; 2 already in sync; 2 recorded."
    )
    assert [w[0] for w in fake.writes if w[0] == "transition" or w[0] == "set_alias"] == []
    assert recorded_commit(fake, "m", "production") == live
    assert (
        recorded_owner(
            fake,
            "m",
            "production",
        )
        is not None
    )
    records = audit.parse(fake.read(["m"]).models["m"].versions["2"].tags[audit_tag("production")])
    assert [(r.action, r.commit) for r in records] == [("adopt", live)]
    assert run("status").stdout.splitlines()[1].endswith(live[:12])
    json_records = json.loads(run("apply", "--format", "json").stdout)
    assert [r["adopted"] for r in json_records] == [False, False]  # recorded already

    # The apply after that writes nothing, and so does one for a commit that does not touch m.
    fake.writes.clear()
    assert run("apply").exit_code == 0
    repo.write("README.md", "unrelated\n")
    repo.commit("unrelated")
    assert run("apply").exit_code == 0
    assert fake.writes == []


def test_adoption_counts_as_evidence_for_requires(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    repo.write("environments/production.yaml", "stage: Production\nrequires: staging\n")
    fake.create_version("m", stage="Staging")
    fake.create_version("m")
    repo.pin("staging", "m", 1)
    repo.commit("staging pin")
    assert run("apply").exit_code == 0  # adopts m v1 in staging
    # v1 leaves Staging: only the adoption's audit record says it was there.
    fake.force_stage("m", "1", "None")
    fake.force_stage("m", "2", "Staging")
    repo.pin("staging", "m", 2)
    repo.pin("production", "m", 1)
    repo.commit("production")
    result = run("plan")
    assert result.exit_code == 0, result.stderr
    assert "v1 → Production" in result.stdout


def test_stale_bookkeeping_after_an_interrupted_run_is_recorded(
    repo: Repo, run: RunCli, fake: FakeRegistry, live: str
) -> None:
    assert run("apply").exit_code == 0
    fake.create_version("m")  # v3
    repo.pin("production", "m", 3)
    new = repo.commit("m v3")
    # An earlier run moved m but died before recording it.
    fake.transition_stage("m", "3", PRODUCTION, archive_existing=True)
    fake.writes.clear()
    plan = run("plan")
    assert (
        "  + production: m v3: record applied commit and ownership + adopt audit record "
        f"(the pin changed since the recorded commit {live[:12]})" in plan.stdout
    )
    assert "n v1" not in plan.stdout.split("record (")[1]  # n's pin did not change: not stale
    assert run("apply").exit_code == 0
    assert recorded_commit(fake, "m", "production") == new
    assert recorded_commit(fake, "n", "production") == live
    assert {w[1] for w in fake.writes} == {"m"}
    assert not any(w[0] == "transition" for w in fake.writes)


def test_old_tags_are_read_back_and_migrated(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    repo.pin("production", "m", 1)
    old = repo.commit("v1")
    fake.set_model_tag("m", "reconciler.applied_commit.production", old)
    fake.set_model_tag("m", "reconciler.managed.production", "git:someone-else")
    # Another repository's ownership (an old tag) is not taken over by adoption.
    assert "record (" not in run("plan").stdout
    repo.pin("production", "m", 2)
    repo.commit("v2")
    # Nor changed without --take-ownership (issue 15 §8): the old tag names its owner.
    refused = run("apply")
    assert refused.exit_code == 5, refused.output
    assert (
        "another repository owns it there: the repository with root commit someone-else (it "
        "recorded no name)" in refused.stderr
    )
    assert run("apply", "--take-ownership").exit_code == 0
    found = fake.read_model("m")
    assert found is not None
    state = state_of(found).environments["production"]
    assert state.commit == repo.git("rev-parse", "HEAD").strip()
    assert STATE_TAG in found.tags


class TakenOverAfterWriting(FakeRegistry):
    """After the transition of `model`, another apply takes its lease over (ours stalled past its
    expiry), moves the model on and records its newer commit."""

    def __init__(self) -> None:
        super().__init__()
        self.model: str | None = None
        self.newer: str = "f" * 40

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        super().transition_stage(model, version, stage, archive_existing=archive_existing)
        if model == self.model:
            self.model = None
            super().transition_stage(model, "3", PRODUCTION, archive_existing=True)
            theirs = {
                "environments": {"production": {"commit": self.newer}},
                "lease": {"holder": "newer-job", "commit": self.newer, "acquired": 1.0,
                          "expires": 4e9},
            }  # fmt: skip
            super().set_model_tag(model, STATE_TAG, json.dumps(theirs))


def v1_serving_v2_pinned(registry: FakeRegistry, repo: Repo) -> str:
    """m with three versions, v1 in Production; the pin (committed) says v2."""
    for _ in range(3):
        registry.create_version("m")
    registry.transition_stage("m", "1", PRODUCTION, archive_existing=True)
    repo.pin("production", "m", 2)
    return repo.commit("m v2")


def test_a_lease_lost_while_writing_is_never_overwritten_nor_repaired(repo: Repo) -> None:
    """The stalled apply must neither undo the newer apply's change (repair) nor overwrite its
    records with a stale copy (the fence would go back to an older commit)."""
    registry = TakenOverAfterWriting()
    v1_serving_v2_pinned(registry, repo)
    registry.model = "m"
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert stages(registry, "m")["3"] == PRODUCTION  # the newer apply's version stands
    assert "repaired" not in result.stdout
    state = parse_state(registry.read_model("m").tags)  # type: ignore[union-attr]
    assert state.environments["production"].commit == registry.newer
    assert state.lease is not None
    assert state.lease["holder"] == "newer-job"
    assert "m: the lease was taken over by newer-job while this apply wrote" in result.stdout
    assert "nothing recorded" in result.stdout


def test_a_change_whose_records_were_lost_is_audited_when_adopted(
    repo: Repo, fake: FakeRegistry
) -> None:
    """Killed between a model's transition and its records: the version serving now may carry
    records of an earlier time it served there, but none of this commit. The apply that finds
    it in sync records an `adopt` audit record for this commit, so history says it is applied."""
    for _ in range(2):
        fake.create_version("m")
    run = make_runner(repo.root, fake)
    for version in (1, 2, 1):  # v2 served once already: it has a production record
        repo.pin("production", "m", version)
        repo.commit(f"m v{version}")
        assert run("apply").exit_code == 0
    repo.pin("production", "m", 2)
    again = repo.commit("m v2 again")
    fake.transition_stage("m", "2", PRODUCTION, archive_existing=True)  # ...and then SIGKILL
    result = run("apply")
    assert result.exit_code == 0, result.stderr
    records = audit.parse(fake.read(["m"]).models["m"].versions["2"].tags[audit_tag("production")])
    assert [(r.action, r.commit) for r in records][-1] == ("adopt", again)
    assert recorded_commit(fake, "m", "production") == again
    history = json.loads(run("history", "m", "--format", "json").stdout)
    newest = history["changes"][0] if isinstance(history, dict) else history[0]
    assert newest["commit"] == again
    assert newest["applied"] is True


class KilledAtAudit(KilledAtModel):
    """Dies writing the audit record of `model` in `environment` (after its transition)."""

    def __init__(self) -> None:
        super().__init__()
        self.audit_kill: tuple[str, str] | None = None

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        if self.audit_kill is not None and (model, key) == (
            self.audit_kill[0],
            audit_tag(self.audit_kill[1]),
        ):
            self.dead = True
        super().set_version_tag(model, version, key, value)


def test_the_audit_record_releases_the_lease_and_the_next_apply_goes_straight_on(
    repo: Repo, fake: FakeRegistry
) -> None:
    first = v1_serving_v2_pinned(fake, repo)
    run = make_runner(repo.root, fake)
    assert run("apply").exit_code == 0
    assert recorded_commit(fake, "m", "production") == first
    assert run("unlock").stdout == "Unlock: 0 removed, 0 kept.\n"  # nothing held: no lease
    repo.pin("production", "m", 3)
    second = repo.commit("m v3")
    fake.writes.clear()
    # No waiting at all: the first apply's lease is released although its tag still holds it.
    result = run("apply", "--lease-wait", "0")
    assert result.exit_code == 0, result.output
    assert "waiting for the lease" not in result.output
    assert [w[0] for w in fake.writes] == ["set_model_tag", "transition", "set_version_tag"]
    assert recorded_commit(fake, "m", "production") == second
    # The second lease write carried the first apply's records over into the tag itself.
    written = parse_state(fake.read(["m"]).models["m"].tags)
    assert written.environments["production"].commit == first
    # An older commit is still refused (the fence reads the records the audit completed).
    repo.git("checkout", "-q", first)
    refused = run("apply")
    assert refused.exit_code == 4
    assert "refusing to apply commit" in refused.stderr


def test_a_kill_before_the_audit_record_keeps_the_lease_and_the_old_fence(repo: Repo) -> None:
    registry = KilledAtAudit()
    for _ in range(2):
        registry.create_version("m")
    run = make_runner(repo.root, registry, lease_ttl=0.05)
    repo.pin("production", "m", 1)
    old = repo.commit("m v1")
    assert run("apply").exit_code == 0
    repo.pin("production", "m", 2)
    new = repo.commit("m v2")
    registry.audit_kill = ("m", "production")
    with pytest.raises(Killed):
        run("apply")
    assert stages(registry, "m") == {"1": ARCHIVED, "2": PRODUCTION}
    found = registry.read(["m"]).models["m"]
    assert state_of(found).lease is not None  # announced records not written: still held
    assert recorded_commit(registry, "m", "production") == old
    # Once the lease expires, the next apply finds m in sync and records it (adoption).
    registry.dead, registry.audit_kill = False, None
    time.sleep(0.1)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 0, result.output
    assert "record" in result.stdout
    assert recorded_commit(registry, "m", "production") == new
    assert state_of(registry.read(["m"]).models["m"]).lease is None
    records = audit.parse(
        registry.read(["m"]).models["m"].versions["2"].tags[audit_tag("production")]
    )
    # Recorded as the promotion it was (issue 15 §9), not as an adoption with no previous.
    assert [(r.action, r.commit, r.previous) for r in records][-1] == ("promote", new, ("1",))


def test_a_kill_between_two_audit_records_completes_only_the_first(repo: Repo) -> None:
    registry = KilledAtAudit()
    for _ in range(3):
        registry.create_version("m")
    run = make_runner(repo.root, registry)
    repo.pin("production", "m", 1)
    repo.pin("staging", "m", 2)
    old = repo.commit("v1, v2")
    assert run("apply").exit_code == 0
    repo.pin("production", "m", 2)
    repo.pin("staging", "m", 3)
    new = repo.commit("v2, v3")
    registry.audit_kill = ("m", "staging")  # production (written first) is audited
    with pytest.raises(Killed):
        run("apply")
    found = registry.read(["m"]).models["m"]
    state = state_of(found)
    assert state.environments["production"].commit == new
    assert state.environments["staging"].commit == old
    assert state.lease is not None  # staging's records are still owed: held until it expires


def test_a_model_whose_step_failed_is_released_by_a_write_of_what_landed(repo: Repo) -> None:
    registry = FailsTransition("b")
    for model in ("a", "b"):
        registry.create_version(model, stage=PRODUCTION)
        registry.create_version(model)
        repo.pin("production", model, 2)
    repo.commit("v2 everywhere")
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    b_writes = [w[0] for w in registry.writes if w[1] == "b"]
    assert b_writes == ["set_model_tag", "set_model_tag"]  # the lease, then its release
    found = registry.read(["b"]).models["b"]
    assert parse_state(found.tags).lease is None
    assert recorded_commit(registry, "b", "production") is None
    assert state_of(registry.read(["a"]).models["a"]).lease is None


class MovedWhileLeasing(FakeRegistry):
    """Someone moves v3 into Production by hand as our lease is written: the plan under the
    lease differs from the one the lease announced."""

    moved = False

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        super().set_model_tag(model, key, value, create_model=create_model)
        if not self.moved:
            self.moved = True
            self.force_stage(model, "3", PRODUCTION)


def test_records_announced_for_another_plan_are_announced_again(repo: Repo) -> None:
    registry = MovedWhileLeasing()
    v1_serving_v2_pinned(registry, repo)
    run = make_runner(repo.root, registry)
    announced = json.loads(run("plan", "--format", "json").stdout)["checksum"]
    registry.writes.clear()
    result = run("apply")
    assert result.exit_code == 0, result.output
    # The lease, the lease announcing the new plan's records, the transition, the audit record
    # (which releases it: no write after it).
    assert [w[0] for w in registry.writes] == [
        "set_model_tag",
        "set_model_tag",
        "transition",
        "set_version_tag",
    ]
    state = state_of(registry.read(["m"]).models["m"])
    assert state.lease is None
    recorded = state.environments["production"].plan
    assert recorded is not None
    assert recorded != announced  # the plan that ran (archive v3), not the one first announced
    assert stages(registry, "m") == {"1": ARCHIVED, "2": PRODUCTION, "3": ARCHIVED}


# Fences that hold when the state tag does not tell the whole story (hostile review, issue 11):
# an apply killed between its transition and its audit record, a state tag written back from a
# stale read, an audit tag removed by hand. An apply from the older commit is refused each time.


def older_and_newer(repo: Repo, registry: FakeRegistry) -> tuple[str, str]:
    """m: v1 in Production applied at `older` (pins v2 there); `newer` (its child) pins v3."""
    for _ in range(3):
        registry.create_version("m")
    registry.transition_stage("m", "1", PRODUCTION, archive_existing=True)
    repo.pin("production", "m", 2)
    older = repo.commit("m v2")
    assert make_runner(repo.root, registry)("apply").exit_code == 0
    repo.pin("production", "m", 3)
    return older, repo.commit("m v3")


def apply_at(repo: Repo, registry: FakeRegistry, commit: str) -> Result:
    repo.git("checkout", "-q", commit)
    return make_runner(repo.root, registry)("apply")


def test_a_kill_before_the_audit_record_still_fences_the_older_commit(repo: Repo) -> None:
    registry = KilledAtAudit()
    older, newer = older_and_newer(repo, registry)
    registry.audit_kill = ("m", "production")
    with pytest.raises(Killed):
        make_runner(repo.root, registry, lease_ttl=0.05)("apply")
    registry.dead, registry.audit_kill = False, None
    time.sleep(0.1)  # the lease expired: anyone may take it over
    refused = apply_at(repo, registry, older)
    assert refused.exit_code == 4, refused.output
    assert (
        f"m may have been changed there by an apply of commit {newer[:12]} (its records never "
        "completed), which is not an ancestor of"
    ) in refused.stderr
    assert stages(registry, "m")["3"] == PRODUCTION
    # The newer commit (or one after it) goes on, and records what serves.
    assert apply_at(repo, registry, newer).exit_code == 0
    assert recorded_commit(registry, "m", "production") == newer
    assert state_of(registry.read(["m"]).models["m"]).attempted == {}


def test_a_state_tag_written_back_from_a_stale_read_still_fences(
    repo: Repo, fake: FakeRegistry
) -> None:
    older, _newer = older_and_newer(repo, fake)
    stale = fake.read(["m"]).models["m"].tags[STATE_TAG]
    assert make_runner(repo.root, fake)("apply").exit_code == 0
    fake.set_model_tag("m", STATE_TAG, stale)  # an older apply's lease write, computed before
    refused = apply_at(repo, fake, older)
    assert refused.exit_code == 4, refused.output
    assert "says its newest audit record, which is not an ancestor of" in refused.stderr
    assert stages(fake, "m")["3"] == PRODUCTION


def test_an_audit_record_removed_by_hand_still_fences(repo: Repo, fake: FakeRegistry) -> None:
    older, newer = older_and_newer(repo, fake)
    assert make_runner(repo.root, fake)("apply").exit_code == 0
    fake.set_version_tag("m", "3", audit_tag("production"), "")  # the UI's tag, emptied
    refused = apply_at(repo, fake, older)
    assert refused.exit_code == 4, refused.output
    assert f"apply of commit {newer[:12]} (its records never completed)" in refused.stderr


class UnlockedWhileWriting(FakeRegistry):
    """`reconciler unlock --force` from another terminal right after m's transition (once
    `armed`)."""

    armed = False

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        super().transition_stage(model, version, stage, archive_existing=archive_existing)
        if not self.armed:
            return
        self.armed = False
        state = state_of(self.read([model]).models[model]).with_lease(None)
        super().set_model_tag(model, STATE_TAG, state.to_json())


def test_a_lease_removed_while_writing_is_said_as_such_and_still_fences(repo: Repo) -> None:
    registry = UnlockedWhileWriting()
    older, newer = older_and_newer(repo, registry)
    registry.armed = True
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert "m: the lease was removed while this apply wrote (`reconciler unlock --force`" in (
        result.stdout
    )
    assert "stalled" not in result.stdout
    assert stages(registry, "m")["3"] == PRODUCTION
    assert state_of(registry.read(["m"]).models["m"]).attempted == {"production": newer}
    assert apply_at(repo, registry, older).exit_code == 4
