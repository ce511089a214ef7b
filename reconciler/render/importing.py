"""How `reconciler import` reports what it wrote and skipped: text for people, JSON for machines."""

from __future__ import annotations

import json
from typing import Any

from reconciler.importing.files import FileResult, ImportReport
from reconciler.render import escape

_MARKS = {"written": "+", "overwritten": "~", "unchanged": "=", "differs": "!", "refused": "-"}


def import_text(report: ImportReport) -> str:
    where = f" (workspace {report.workspace})" if report.workspace else ""
    lines = [f"Import from {report.registry}{where} (pin files only; the registry is not changed):"]
    for result in report.files:
        lines.append(f"  {_MARKS[result.outcome]} {_file_line(result)}")
        if result.outcome != "refused":
            lines += [f"      {note}" for note in result.pin.notes]
    for skip in report.skipped:
        lines.append(f"  - skipped {skip.model} in {skip.environment}: {skip.reason}")
    if not report.files and not report.skipped:
        lines.append("  no registered model holds a stage or alias of these environments")
    counts = _counts(report)
    summary = ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "nothing to import"
    lines.append(f"Import: {summary}. Nothing was written to the registry.")
    if counts["written"] or counts["overwritten"]:
        lines.append("Next: review and commit environments/, then `reconciler plan`.")
    return escape.lines(lines)


def _file_line(result: FileResult) -> str:
    pin = result.pin
    if result.outcome == "written":
        return f"wrote {result.file}: {pin.model} v{pin.version}"
    if result.outcome == "overwritten":
        return f"overwrote {result.file}: v{result.existing_version} → v{pin.version}"
    if result.outcome == "unchanged":
        return f"{result.file} already pins v{pin.version}"
    if result.outcome == "differs":
        return (
            f"{result.file} pins v{result.existing_version}, the registry serves v{pin.version} "
            "in this environment: kept (--overwrite replaces it)"
        )
    return f"refused {result.file}: {result.reason}"


def _counts(report: ImportReport) -> dict[str, int]:
    counts = dict.fromkeys(("written", "overwritten", "unchanged", "differs"), 0)
    for result in report.files:
        if result.outcome in counts:
            counts[result.outcome] += 1
    counts["skipped"] = len(report.skipped) + sum(r.outcome == "refused" for r in report.files)
    return counts


def import_json(report: ImportReport) -> str:
    document: dict[str, Any] = {
        "registry": report.registry,
        "workspace": report.workspace,
        "registry_writes": 0,
        "pins": [
            {
                "environment": r.pin.environment,
                "model": r.pin.model,
                "version": r.pin.version,
                "run_id": r.pin.run_id,
                "file": r.file,
                "outcome": r.outcome,
                "existing_version": r.existing_version,
                "notes": list(r.pin.notes),
                "reason": r.reason,
            }
            for r in report.files
        ],
        "skipped": [
            {"environment": s.environment, "model": s.model, "reason": s.reason}
            for s in report.skipped
        ],
        "counts": _counts(report),
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
