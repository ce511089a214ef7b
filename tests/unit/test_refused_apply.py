"""A refused or failed apply leaves the fence of every model it did not write exactly as it found
it (issue 15 §2): `attempted` only where a write may have gone out.

Before, an apply from a commit that is not a descendant (a rebased branch, an old checkout) took
its leases while main applied, was refused with exit 4 under them, and its release left
`attempted: <its commit>` on every model it leased: every later apply from main was refused until
someone used --force, and `unlock` said "0 removed".
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Collection
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.records.bookkeeping import ModelState, state_of
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ActualState
from tests.conftest import Repo, make_runner
from tests.support.faulty import FailsTransition

MODELS = [f"m{i:02d}" for i in range(12)]


class MainLandsWhileWaiting(FakeRegistry):
    """Runs `meanwhile` (main's apply) right before the registry read that starts taking the
    leases: the side apply planned before main's records existed, and finds them under its
    leases."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.meanwhile: Callable[[], None] | None = None

    def read(self, models: Collection[str]) -> ActualState:
        self.reads += 1
        if self.reads == 2 and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return super().read(models)


def states(registry: FakeRegistry, models: list[str]) -> dict[str, ModelState]:
    actual = registry.read(models)
    return {name: state_of(actual.models[name]) for name in models}


def branch(repo: Repo, name: str, base: str) -> Path:
    target = repo.root.parent / name
    subprocess.run(["git", "clone", "-q", f"file://{repo.root}", str(target)], check=True)
    subprocess.run(["git", "checkout", "-q", "-b", name, base], cwd=target, check=True)
    return target


def commit(root: Path, message: str) -> str:
    for args in (["add", "-A"], ["commit", "-q", "-m", message], ["rev-parse", "HEAD"]):
        out = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def commit_of(root: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return out.stdout.strip()


def pin(root: Path, model: str, version: int) -> None:
    path = root / "environments" / "production" / f"{model}.yaml"
    path.write_text(f"model: {model}\nversion: {version}\n")


def test_a_refused_apply_leaves_every_fence_as_it_found_it(repo: Repo) -> None:
    registry = MainLandsWhileWaiting()
    for model in [*MODELS, "other"]:
        for _ in range(4):
            registry.create_version(model)
        registry.transition_stage(model, "1", PRODUCTION, archive_existing=True)
        repo.pin("production", model, 1)
    base = repo.commit("v1 everywhere")
    run_main = make_runner(repo.root, registry)
    assert run_main("apply").exit_code == 0
    side = branch(repo, "side", base)
    for model in MODELS:
        pin(side, model, 3)
    commit(side, "v3 from a branch that main never merges")
    for model in MODELS:
        repo.pin("production", model, 2)
    main_commit = repo.commit("v2 on main")

    found: dict[str, ModelState] = {}

    def main_applies() -> None:
        result = run_main("apply")
        assert result.exit_code == 0, result.output
        found.update(states(registry, MODELS))
        subprocess.run(["git", "fetch", "-q", "origin"], cwd=side, check=True)  # CI: full history

    registry.meanwhile, registry.reads = main_applies, 0
    refused = make_runner(side, registry)("apply")
    assert refused.exit_code == 4, refused.output
    assert "is not an ancestor of" in refused.stderr
    assert found  # main applied between the side apply's plan and its leases
    after = states(registry, MODELS)
    for model in MODELS:
        assert after[model] == found[model], model  # exactly as found: no `attempted`
        assert after[model].attempted == {}
        assert after[model].lease is None
        assert after[model].environments["production"].commit == main_commit
    assert make_runner(repo.root, registry)("unlock").stdout == "Unlock: 0 removed, 0 kept.\n"

    # Main goes on, without --force: a commit touching another model, then the same models.
    repo.pin("production", "other", 2)
    repo.commit("other v2")
    assert run_main("apply").exit_code == 0
    for model in MODELS:
        repo.pin("production", model, 4)
    repo.commit("v4 on main")
    again = run_main("apply")
    assert again.exit_code == 0, again.output
    for model in MODELS:
        assert registry.read([model]).models[model].versions["4"].stage == PRODUCTION


def test_a_failed_apply_marks_attempted_only_what_it_sent(repo: Repo) -> None:
    """The first model's transition fails; the models after it are not attempted: only the one
    whose write went out keeps the commit as attempted (the write may have landed)."""
    registry = FailsTransition("a")
    for model in ("a", "b", "c"):
        registry.create_version(model, stage=PRODUCTION)
        registry.create_version(model)
        repo.pin("production", model, 1)
    repo.commit("v1")
    run = make_runner(repo.root, registry)
    assert run("apply").exit_code == 0
    before = states(registry, ["b", "c"])
    for model in ("a", "b", "c"):
        repo.pin("production", model, 2)
    new = repo.commit("v2")
    result = run("apply", "--parallelism", "1")
    assert result.exit_code == 1
    assert "- production: b v2 → Production, archives v1: not attempted" in result.stdout
    assert states(registry, ["a"])["a"].attempted == {"production": new}
    assert states(registry, ["b", "c"]) == before


class MovedByHand(FakeRegistry):
    """Someone moves m's v3 into Production right before the apply's compare-and-set re-read."""

    armed = False

    def read_versions(self, model: str):  # type: ignore[no-untyped-def]
        if self.armed:
            self.armed = False
            self.force_stage(model, "3", PRODUCTION)
        return super().read_versions(model)


def test_a_conflicted_change_sends_nothing_and_leaves_the_fence(repo: Repo) -> None:
    registry = MovedByHand()
    for _ in range(3):
        registry.create_version("m")
    registry.transition_stage("m", "1", PRODUCTION, archive_existing=True)
    repo.pin("production", "m", 1)
    repo.commit("v1")
    run = make_runner(repo.root, registry)
    assert run("apply").exit_code == 0
    before = states(registry, ["m"])
    repo.pin("production", "m", 2)
    repo.commit("v2")
    registry.armed = True
    result = run("apply")
    assert result.exit_code == 1
    assert "! production: m v2 → Production" in result.stdout
    assert states(registry, ["m"]) == before


def test_a_killed_apply_fences_only_the_models_it_reached(repo: Repo) -> None:
    """SIGKILL leaves the lease announcing every model; the ones the apply never reached hold
    nothing it announced, so they do not fence main. The one it wrote does."""
    from tests.unit.test_bookkeeping import Killed, KilledAtModel

    registry = KilledAtModel()
    for model in ("a", "b", "c"):
        for _ in range(3):
            registry.create_version(model)
        registry.transition_stage(model, "1", PRODUCTION, archive_existing=True)
        repo.pin("production", model, 1)
    base = repo.commit("v1")
    run_main = make_runner(repo.root, registry)
    assert run_main("apply").exit_code == 0
    side = branch(repo, "side", base)
    for model in ("a", "b", "c"):
        pin(side, model, 3)
    commit(side, "v3 from a branch")
    registry.kill_at = "b"  # a is written and recorded, then SIGKILL at b's transition
    with pytest.raises(Killed):
        make_runner(side, registry, lease_ttl=0.05)("apply", "--parallelism", "1")
    registry.dead, registry.kill_at = False, None
    assert states(registry, ["c"])["c"].attempted != {}  # announced: it may have landed...
    time.sleep(0.1)  # the killed apply's lease expired
    report = run_main("unlock").stdout.splitlines()
    side_commit = commit_of(side)
    assert report[-1] == "Unlock: 2 removed, 0 kept; 2 unrecorded fence(s) kept."
    assert (
        f"c: production: fenced by commit {side_commit[:12]} while v3 serves there, whose apply "
        "may have changed it and never recorded it; kept (an apply of that commit or a "
        "descendant records it; `apply --force` overrides)"
    ) in report
    for model in ("a", "b", "c"):
        repo.pin("production", model, 2)
    repo.commit("v2 on main")
    refused = run_main("apply")
    assert refused.exit_code == 4, refused.output  # ...a was written from the side branch
    assert "a was last applied there from commit" in refused.stderr
    result = run_main("apply", "--model", "b", "--model", "c")  # never reached: no fence
    assert result.exit_code == 0, result.output
    for model in ("b", "c"):
        assert registry.read([model]).models[model].versions["2"].stage == PRODUCTION
        assert states(registry, [model])[model].attempted == {}
