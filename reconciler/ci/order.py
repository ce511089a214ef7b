"""Environments in promotion order, split where the GitHub Environment `production` gates them,
and applied one at a time in that order (each followed by `verify` when asked), stopping at the
first that fails."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def split(environments: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """`before` (applied first, no approval) and `gated` (the first Production-stage
    environment and every one after it), from `validate --format json`'s environments."""
    names = [str(env["name"]) for env in environments]
    gate = next(
        (i for i, env in enumerate(environments) if env.get("stage") == "Production"), len(names)
    )
    return names[:gate], names[gate:]


def apply_in_order(
    environments: list[str],
    reconciler: Sequence[str],
    out_dir: Path,
    verify: bool,
    echo: Callable[[str], None],
) -> int:
    """`apply --env E --format json > apply-E.json` (and `verify --env E --format json >
    verify-E.json`) per environment; the first failing exit code, else 0."""
    for index, environment in enumerate(environments):
        steps = [("apply", out_dir / f"apply-{environment}.json")]
        if verify:
            steps.append(("verify", out_dir / f"verify-{environment}.json"))
        for command, out in steps:
            echo(f"::group::reconciler {command} --env {environment}")
            with out.open("w", encoding="utf-8") as handle:
                # stderr (result lines, notes, errors, annotations) goes to the job log as it comes.
                done = subprocess.run(
                    [*reconciler, command, "--env", environment, "--format", "json"],
                    stdout=handle,
                    check=False,
                )
            echo("::endgroup::")
            if done.returncode != 0:
                rest = ", ".join(environments[index + 1 :]) or "none"
                what = "serving does not follow the pins" if command == "verify" else "failed"
                echo(
                    f"::error title=reconcile: {environment} {what}::reconciler {command} --env "
                    f"{environment} exited {done.returncode}; not applied after it: {rest}"
                )
                return done.returncode
    return 0


def read_validated(path: Path) -> list[dict[str, Any]] | None:
    """The environments of `validate --format json`; None when it gave none."""
    document = json.loads(path.read_text(encoding="utf-8") or "{}")
    environments = document.get("environments") if isinstance(document, dict) else None
    return environments if isinstance(environments, list) else None
