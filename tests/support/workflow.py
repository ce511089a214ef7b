"""Run a GitHub workflow step's `run:` script here, as the runner would (bash -eo pipefail, the
step's env, $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY files), with this environment's `reconciler`
and `python` first on PATH. `${{ }}` expressions are not evaluated: the test passes what they
would give as environment variables, and the workflow keeps them out of `run:` anyway."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def step(workflow: str, job: str, name: str) -> dict[str, Any]:
    """The step whose `id` or `name` is `name`."""
    document = yaml.safe_load((REPO / ".github" / "workflows" / workflow).read_text())
    for candidate in document["jobs"][job]["steps"]:
        if name in (candidate.get("id"), candidate.get("name")):
            return dict(candidate)
    raise KeyError(f"{workflow}: job {job} has no step {name!r}")


def install_ci_scripts(root: Path) -> None:
    """What a promotion repository carries: scripts/ci/ beside environments/."""
    shutil.copytree(
        REPO / "scripts" / "ci",
        root / "scripts" / "ci",
        ignore=shutil.ignore_patterns("node_modules", "*.json", "*.mjs"),
        dirs_exist_ok=True,
    )


class Runner:
    """One job's steps in `root`, sharing the output and summary files."""

    def __init__(self, root: Path, env: dict[str, str], extra_path: Path | None = None) -> None:
        self.root = root
        self.output = root.parent / "github_output"
        self.summary = root.parent / "github_summary"
        self.output.touch()
        self.summary.touch()
        path = [str(Path(sys.executable).parent)]
        if extra_path is not None:
            path.insert(0, str(extra_path))
        self.env = {
            **os.environ,
            **env,
            "PATH": os.pathsep.join([*path, os.environ["PATH"]]),
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
        }

    def run(
        self, workflow: str, job: str, name: str, **step_env: str
    ) -> subprocess.CompletedProcess[str]:
        script = step(workflow, job, name)["run"]
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.root,
            env={**self.env, **step_env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def outputs(self) -> dict[str, str]:
        pairs = (line.split("=", 1) for line in self.output.read_text().splitlines() if "=" in line)
        return dict(pairs)
