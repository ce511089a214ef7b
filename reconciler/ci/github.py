"""The runner's files ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY) and the `gh` CLI."""

from __future__ import annotations

import os
import subprocess

from reconciler.errors import ReconcilerError


def set_outputs(values: dict[str, str]) -> None:
    """Step outputs (one line each), when running as a step; a local run has no runner."""
    if path := os.environ.get("GITHUB_OUTPUT"):
        with open(path, "a", encoding="utf-8") as handle:
            for name, value in values.items():
                handle.write(f"{name}={value}\n")


def add_summary(markdown: str) -> None:
    if path := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown)


def gh(*args: str, command: str = "gh") -> str:
    """Run `gh` (GH_TOKEN from the environment); its stdout. A failure is one line naming the
    call and what gh said (an expected failure of the step, not a bug)."""
    try:
        done = subprocess.run([command, *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise ReconcilerError(f"{command} (the GitHub CLI) is not installed") from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split()) or "no message"
        raise ReconcilerError(f"gh {' '.join(args[:2])} failed (exit {done.returncode}): {said}")
    return done.stdout
