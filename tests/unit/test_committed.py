"""What is applied is exactly what is committed (issue 8 §2): `apply` refuses an environments/
that differs from HEAD, and a repository with no commit; `--allow-dirty` applies and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.records import audit
from reconciler.records.bookkeeping import applied_commit, audit_tag
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli, make_runner

ESCAPE = "; use --allow-dirty for a local experiment. Nothing was changed\n"


@pytest.fixture
def raw(repo: Repo, fake: FakeRegistry) -> RunCli:
    """The CLI exactly on the work tree as the test leaves it (nothing committed for it)."""
    for _ in range(3):
        fake.create_version("m")
    return make_runner(repo.root, fake, commit_before_apply=False)


@pytest.fixture
def head(repo: Repo) -> str:
    repo.pin("production", "m", 1)
    repo.pin("staging", "m", 2)
    return repo.commit("pins")


def refused(head: str, listed: str) -> str:
    return (
        f"error: refusing to apply: environments/ differs from the commit checked out "
        f"({head[:12]}): {listed}. Commit or discard them: what is applied is what is committed"
        + ESCAPE
    )


def assert_nothing_written(fake: FakeRegistry) -> None:
    assert fake.writes == []


def test_modified_pin(repo: Repo, raw: RunCli, fake: FakeRegistry, head: str) -> None:
    repo.pin("production", "m", 3)
    result = raw("apply")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == refused(head, "environments/production/m.yaml (modified)")
    assert_nothing_written(fake)


def test_staged_untracked_deleted_and_ignored_files(
    repo: Repo, raw: RunCli, fake: FakeRegistry, head: str
) -> None:
    repo.pin("production", "m", 3)
    repo.git("add", "environments/production/m.yaml")
    (repo.root / "environments/staging/m.yaml").unlink()
    repo.write("environments/qa.yaml", "alias: qa\n")
    repo.write(".gitignore", "local-*.yaml\n")
    repo.write("environments/qa/local-m.yaml", "model: local-m\nversion: 1\n")
    repo.write("README.md", "not a pin: never blocks an apply\n")
    result = raw("apply")
    assert result.exit_code == 1
    assert result.stderr == refused(
        head,
        "environments/production/m.yaml (staged), environments/qa.yaml (untracked), "
        "environments/qa/local-m.yaml (ignored), environments/staging/m.yaml (deleted)",
    )
    assert_nothing_written(fake)


def test_names_with_spaces_unicode_and_pattern_characters(
    repo: Repo, raw: RunCli, head: str
) -> None:
    repo.write("environments/production/c*d [v] é.yaml", "model: c*d [v] é\nversion: 1\n")
    result = raw("apply")
    assert result.exit_code == 1
    assert result.stderr == refused(head, "environments/production/c*d [v] é.yaml (untracked)")


def test_changes_outside_environments_do_not_block(
    repo: Repo, raw: RunCli, fake: FakeRegistry, head: str
) -> None:
    repo.write("README.md", "edited\n")
    repo.write("environments/production/notes.txt", "not read by the tool\n")
    result = raw("apply")
    assert result.exit_code == 0, result.stderr


def test_a_repository_with_no_commit(repo: Repo, raw: RunCli, fake: FakeRegistry) -> None:
    repo.pin("production", "m", 1)
    result = raw("apply")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: refusing to apply: the repository has no commit yet: commit environments/ first "
        "(the commit fences and audits the apply)" + ESCAPE
    )
    assert_nothing_written(fake)


def test_plan_and_status_read_the_work_tree(repo: Repo, raw: RunCli, head: str) -> None:
    repo.pin("production", "m", 3)  # a pull request's checkout, or an edit before committing
    assert raw("plan", "--detailed-exitcode").exit_code == 2
    assert raw("status").exit_code == 0


def test_allow_dirty_applies_and_the_audit_says_dirty(
    repo: Repo, raw: RunCli, fake: FakeRegistry, head: str
) -> None:
    repo.pin("production", "m", 3)
    result = raw("apply", "--allow-dirty", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert {r["environment"]: r["new_version"] for r in json.loads(result.stdout)} == {
        "production": "3",
        "staging": "2",
    }
    registered = fake.read(["m"]).models["m"]
    assert registered.in_stage(PRODUCTION) == ["3"]
    tag = registered.versions["3"].tags[audit_tag("production")]
    assert json.loads(tag)[0]["dirty"] is True
    [record] = audit.parse(tag)
    assert (record.commit, record.dirty) == (head, True)
    # The fence still records HEAD: an older commit cannot roll this back unforced.
    assert applied_commit(registered, "production") == head
    # A clean apply's record carries no `dirty` key at all (tag values are capped in size).
    repo.commit("pin v3")
    repo.pin("production", "m", 2)
    clean = repo.commit("back to v2")
    assert raw("apply").exit_code == 0
    tag = fake.read(["m"]).models["m"].versions["2"].tags[audit_tag("production")]
    assert "dirty" not in json.loads(tag)[-1]
    assert audit.parse(tag)[-1].commit == clean


def test_history_does_not_count_a_dirty_apply_as_applying_the_commit(
    repo: Repo, raw: RunCli, fake: FakeRegistry, head: str
) -> None:
    repo.pin("staging", "m", 3)  # dirty: production's pin is as committed, staging's is not
    assert raw("apply", "--allow-dirty").exit_code == 0
    [record] = audit.parse(fake.read(["m"]).models["m"].versions["1"].tags[audit_tag("production")])
    assert (record.commit, record.dirty) == (head, True)
    result = raw("history", "m", "--env", "production", "--format", "json")
    changes = json.loads(result.stdout)["changes"]
    assert [(c["commit"], c["to_version"], c["applied"]) for c in changes] == [(head, "1", False)]
    repo.commit("staging v3")
    assert raw("apply").exit_code == 0  # in sync: nothing to write, so nothing recorded


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_a_change_git_status_is_told_to_ignore_is_still_refused(
    repo: Repo, raw: RunCli, fake: FakeRegistry, head: str, flag: str
) -> None:
    """`git update-index --assume-unchanged` hides an edit from `git status`; the loader reads
    the edited file all the same, so the check compares contents with the commit."""
    repo.git("update-index", flag, "environments/production/m.yaml")
    repo.pin("production", "m", 3)
    assert repo.git("status", "--porcelain").strip() == ""
    result = raw("apply")
    assert result.exit_code == 1
    assert result.stderr == refused(
        head, "environments/production/m.yaml (modified, hidden from git status)"
    )
    assert_nothing_written(fake)


def test_a_clean_filter_that_rewrites_a_pin_is_refused(
    repo: Repo, raw: RunCli, fake: FakeRegistry, head: str
) -> None:
    """A clean filter makes `git status` compare the filtered file with the commit; the loader
    reads the file as it is on disk."""
    repo.git("config", "filter.pin.clean", "sed s/version:.3/version:\\ 1/")
    repo.write(".git/info/attributes", "*.yaml filter=pin\n")
    repo.pin("production", "m", 3)
    assert repo.git("status", "--porcelain").strip() == ""
    result = raw("apply")
    assert result.exit_code == 1
    assert "environments/production/m.yaml (modified, hidden from git status)" in result.stderr
    assert_nothing_written(fake)


def test_line_endings_alone_are_no_change(repo: Repo, raw: RunCli, head: str) -> None:
    path = repo.root / "environments/production/m.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    repo.git("update-index", "--assume-unchanged", "environments/production/m.yaml")
    assert raw("apply").exit_code == 0


SUBMODULE = (
    "error: environments/ is a git submodule (a repository of its own): reconciler fences, "
    "audits and reads the history of pins by the commits of the repository it runs in, which "
    "holds only a pointer to the submodule's commit. Keep the pins in this repository "
    "(environments/ as a plain folder). Nothing was changed\n"
)


def _with_submodule(repo: Repo, pins: Repo) -> None:
    """environments/ as a submodule holding the pins repository (its root has the folders)."""
    pins.write("production/m.yaml", "model: m\nversion: 1\n")
    pins.commit("pins")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q",
             str(pins.root), "environments")  # fmt: skip
    repo.commit("pins as a submodule")


def test_environments_as_a_git_submodule_is_refused_clearly(
    repo: Repo, raw: RunCli, fake: FakeRegistry, tmp_path: Path
) -> None:
    """Issue 15 §9: `plan` used to pass and `apply` crash (exit 3, AttributeError). What needs
    git refuses with one line and changes nothing; what reads only the files works."""
    _with_submodule(repo, Repo(tmp_path / "pins"))
    fake.transition_stage("m", "1", PRODUCTION, archive_existing=False)
    fake.writes.clear()
    for args in (("plan",), ("apply",), ("history", "m"), ("plan", "--format", "json")):
        result = raw(*args)
        assert result.exit_code == 1, (args, result.output)
        if "json" in args:
            assert json.loads(result.stdout)["error"]["message"] == SUBMODULE[7:-1]
        else:
            assert result.stderr == SUBMODULE, args
    assert fake.writes == []
    assert raw("validate").exit_code == 0
    assert raw("status").exit_code == 0
    nested = raw("promote", "m", "--to", "production", "--version", "2", "--commit")
    assert nested.exit_code == 1
    assert nested.stderr == SUBMODULE


def test_environments_as_a_clone_inside_the_work_tree_is_refused(
    repo: Repo, raw: RunCli, head: str
) -> None:
    """A repository of its own, not even a submodule: the outer commit does not hold the pins."""
    Repo(repo.root / "environments").commit("its own history")
    result = raw("apply")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: environments/ is a git repository of its own: reconciler fences, audits and reads "
        "the history of pins by the commits of the repository it runs in, which does not track "
        "its files."
    )
