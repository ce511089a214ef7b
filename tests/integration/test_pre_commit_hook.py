"""The hook other repositories use: `pre-commit try-repo` installs this repository as a hook and
runs `reconciler validate` on their pins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_pre_commit_hook_validates_another_repository(repo: Repo) -> None:
    repo.write("environments/production/m.yaml", "model: m\nversion: 0\n")
    repo.write("README.md", "not a pin\n")
    repo.git("add", "-A")
    pre_commit = [
        str(Path(sys.executable).parent / "pre-commit"),
        "try-repo",
        str(REPO),
        "reconciler-validate",
        "--all-files",
    ]
    failed = subprocess.run(pre_commit, cwd=repo.root, capture_output=True, text=True, timeout=600)
    assert failed.returncode == 1
    assert "environments/production/m.yaml:2: version: '0' is not a model version" in failed.stdout
    repo.write("environments/production/m.yaml", "model: m\nversion: 3\n")
    repo.git("add", "-A")
    passed = subprocess.run(pre_commit, cwd=repo.root, capture_output=True, text=True, timeout=600)
    assert passed.returncode == 0, passed.stdout + passed.stderr
