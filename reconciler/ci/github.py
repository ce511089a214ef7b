"""The runner's files ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY) and the `gh` CLI."""

from __future__ import annotations

import os
import subprocess


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
    """Run `gh` (GH_TOKEN from the environment); its stdout. A failure raises CalledProcessError."""
    done = subprocess.run([command, *args], check=True, capture_output=True, text=True)
    return done.stdout
