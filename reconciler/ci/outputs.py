"""`reconciler apply --format json` as a job summary and step outputs for deploy jobs:
changed_models (a JSON list) and changed (true/false).

Never fails: a file that is missing, empty or not JSON (apply stopped before printing) and the
`{"error": ...}` document of a failed apply are reported in the summary; the apply step's own
exit code is what fails the job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Installed beside this script by the workflow (`pip install .`): one escaping rule for every
# markdown reconciler writes, so a model name cannot break the summary's table (issue 15 §7).
from reconciler.render.escape import md_cell, md_code, md_text


def summary(records: list[dict[str, Any]], problems: list[str] | None = None) -> str:
    lines = [
        "### Registry apply",
        "",
        "| Environment | Model | Version | Stage | Archived | Result |",
        "|---|---|---|---|---|---|",
    ]
    for record in records:
        result = "in sync" if record.get("already_promoted") else record.get("outcome", "")
        if record.get("retired"):
            result = "retired"
        version = f"v{record['new_version']}" if record.get("new_version") else "-"
        archived = ", ".join(f"v{v}" for v in record.get("archived_versions") or []) or "-"
        cells = [
            md_text(str(record.get("environment", "?"))),
            md_code(str(record.get("model_name", "?"))),
            md_text(version),
            md_text(str(record.get("new_stage", "-"))),
            md_text(archived),
            md_text(str(result)),
        ]
        lines.append("| " + " | ".join(md_cell(cell) for cell in cells) + " |")
    for problem in problems or []:
        lines += ["", f"**{md_text(problem)}**"]
    return "\n".join(lines) + "\n"


def changed_models(records: list[dict[str, Any]]) -> list[str]:
    return sorted({str(r["model_name"]) for r in records if r.get("promoted") or r.get("retired")})


def read(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The records in one apply's output, and what was wrong with it if anything."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return [], f"{path.name}: no output (apply did not run)"
    if not text.strip():
        return [], f"{path.name}: apply printed nothing (it stopped before its report)"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return [], f"{path.name}: not JSON (apply stopped mid-report)"
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
        return (
            [],
            f"{path.name}: apply failed (exit {error.get('exit_code')}): {error.get('message')}",
        )
    if not isinstance(parsed, list):
        return [], f"{path.name}: not a list of apply records"
    return [r for r in parsed if isinstance(r, dict)], None


def read_all(paths: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in paths:
        found, problem = read(path)
        records += found
        if problem:
            problems.append(problem)
    return records, problems
