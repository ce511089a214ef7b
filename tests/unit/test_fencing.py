"""Ordered applies: the commit being applied must descend from the one last applied."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.pins.values import PRODUCTION
from reconciler.records.bookkeeping import STATE_TAG, applied_commit_tag, audit_tag
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, make_runner, recorded_commit


def stages(fake: FakeRegistry) -> dict[str, str]:
    return {v: mv.stage for v, mv in fake.read(["m"]).models["m"].versions.items()}


def clone(repo: Repo, name: str, *args: str) -> Path:
    target = repo.root.parent / name
    subprocess.run(["git", "clone", "-q", *args, f"file://{repo.root}", str(target)], check=True)
    return target


def history(repo: Repo, fake: FakeRegistry) -> tuple[str, str, str]:
    """Three commits pinning production to v1, v2, v3."""
    for _ in range(3):
        fake.create_version("m")
    commits = []
    for version in (1, 2, 3):
        repo.pin("production", "m", version)
        commits.append(repo.commit(f"pin v{version}"))
    return commits[0], commits[1], commits[2]


def test_an_older_commit_is_refused_after_a_newer_one(repo: Repo, fake: FakeRegistry) -> None:
    _c1, c2, c3 = history(repo, fake)
    old = clone(repo, "old")
    subprocess.run(["git", "checkout", "-q", c2], cwd=old, check=True)
    new = clone(repo, "new")

    assert make_runner(new, fake)("apply").exit_code == 0
    assert recorded_commit(fake, "m", "production") == c3
    assert stages(fake) == {"1": "None", "2": "None", "3": PRODUCTION}
    writes = len(fake.writes)

    refused = make_runner(old, fake)("apply")
    assert refused.exit_code == 4
    assert refused.stderr == (
        f"error: refusing to apply commit {c2[:12]} to production: m was last applied there from "
        f"commit {c3[:12]}, which is not an ancestor of {c2[:12]}. An older run finishing last would roll "
        "production back; use --force to apply anyway\n"
    )
    assert len(fake.writes) == writes  # nothing written, not even the plan tag
    assert stages(fake) == {"1": "None", "2": "None", "3": PRODUCTION}

    forced = make_runner(old, fake)("apply", "--force")
    assert forced.exit_code == 0
    assert stages(fake)["2"] == PRODUCTION
    assert recorded_commit(fake, "m", "production") == c2


def test_a_newer_commit_and_a_revert_are_fine(repo: Repo, fake: FakeRegistry) -> None:
    _c1, _c2, c3 = history(repo, fake)
    run = make_runner(repo.root, fake)
    assert run("apply").exit_code == 0
    repo.git("revert", "--no-edit", "HEAD")  # the rollback is a new commit: it descends
    result = run("apply")
    assert result.exit_code == 0, result.stderr
    assert stages(fake)["2"] == PRODUCTION
    assert recorded_commit(fake, "m", "production") != c3


def test_a_shallow_clone_cannot_tell_and_is_refused_with_a_hint(
    repo: Repo, fake: FakeRegistry
) -> None:
    c1, _c2, c3 = history(repo, fake)
    full = clone(repo, "full")
    subprocess.run(["git", "checkout", "-q", c1], cwd=full, check=True)
    assert make_runner(full, fake)("apply").exit_code == 0
    shallow = clone(repo, "shallow", "--depth", "1")
    result = make_runner(shallow, fake)("apply")
    assert result.exit_code == 4
    # Its owner (this repository, known by its root commit) cannot be told from here either.
    assert result.stderr == (
        f"error: refusing to apply m to production: its owner is recorded as file://{repo.root} "
        f"(root commit {c1[:12]}), and this shallow clone cannot tell "
        "whether that is this repository (a repository is known by its root commit, which is "
        "not here). Fetch full history (git fetch --unshallow; actions/checkout with "
        "fetch-depth: 0)\n"
    )
    # Without ownership recorded (an older version's tags), the fence says the same.
    found = fake.read_model("m")
    assert found is not None
    fake.set_model_tag("m", STATE_TAG, "")
    fake.set_model_tag("m", applied_commit_tag("production"), c1)
    fake.set_version_tag("m", "1", audit_tag("production"), "")
    result = make_runner(shallow, fake)("apply")
    assert result.exit_code == 4
    assert result.stderr == (
        f"error: refusing to apply commit {c3[:12]} to production: m was last applied there from "
        f"commit {c1[:12]}, which is not in this clone (a shallow checkout?). Fetch full history "
        "(git fetch --unshallow; actions/checkout with fetch-depth: 0), or use --force\n"
    )
    subprocess.run(["git", "fetch", "-q", "--unshallow"], cwd=shallow, check=True)
    assert make_runner(shallow, fake)("apply").exit_code == 0


def test_outside_git_a_recorded_commit_needs_force(tmp_path: Path, fake: FakeRegistry) -> None:
    fake.create_version("m")
    fake.set_model_tag("m", applied_commit_tag("production"), "a" * 40)
    plain = tmp_path / "plain"
    (plain / "environments" / "production").mkdir(parents=True)
    (plain / "environments" / "production" / "m.yaml").write_text("model: m\nversion: 1\n")
    # Outside git nothing is committed: apply needs --allow-dirty, and the fence still holds.
    result = make_runner(plain, fake)("apply", "--allow-dirty")
    assert result.exit_code == 4
    assert (
        "refusing to apply m to production: it was last applied there from commit aaaaaaaaaaaa, and this is not a git checkout to compare with; use --force"
        in result.stderr
    )
    assert make_runner(plain, fake)("apply", "--allow-dirty", "--force").exit_code == 0


def test_a_full_clone_without_the_recorded_commit_is_not_called_shallow(
    repo: Repo, fake: FakeRegistry
) -> None:
    _c1, _c2, c3 = history(repo, fake)
    main = repo.git("branch", "--show-current").strip()
    repo.git("checkout", "-q", "-b", "experiment")
    repo.pin("production", "m", 1)
    side = repo.commit("try v1 from a branch")
    assert make_runner(repo.root, fake)("apply").exit_code == 0
    repo.git("checkout", "-q", main)
    main_only = clone(repo, "main-only", "--single-branch", "--branch", main)
    result = make_runner(main_only, fake)("apply")
    assert result.exit_code == 4
    assert result.stderr == (
        f"error: refusing to apply commit {c3[:12]} to production: m was last applied there from "
        f"commit {side[:12]}, which is not in this clone (a commit on a branch this clone lacks, "
        "or history rewritten since). Fetch it (git fetch origin) and apply a commit that "
        "descends from it, or use --force\n"
    )
