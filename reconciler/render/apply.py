"""An apply's results: a line per step as it lands, the summary, and the JSON records."""

from __future__ import annotations

import json

from reconciler.apply.executor import ApplyReport, StepResult
from reconciler.render import escape
from reconciler.render.common import count

_OUTCOME_MARK = {
    "applied": "✓",
    "failed": "✗",
    "unknown": "?",
    "conflicted": "!",
    "not_attempted": "-",
}


def apply_text(report: ApplyReport, streamed: bool = False) -> str:
    """The apply's report; `streamed`: the result lines were printed as they landed, so only
    what follows them (repairs, records, the summary)."""
    # Copies come first: apply makes them before any version moves (streamed as notes).
    lines = [] if streamed else [f"> {copy.describe()}" for copy in report.copies]
    lines += [] if streamed else [result_line(result) for result in report.results]
    if report.repairs:
        lines.append("repaired (the registry was off the plan after applying: another writer?):")
        lines.extend(f"  {result_line(result)}" for result in report.repairs)
    lines.extend(f"+ {a.environment}: {a.describe()}" for a in report.adoptions)
    counts = {o: sum(1 for r in report.results if r.outcome == o) for o in _OUTCOME_MARK}
    in_sync = sum(1 for e in report.plan.entries if not e.steps)
    if not report.results and not report.adoptions:
        lines.append("Nothing to do: the registry matches the pins.")
    for error in report.bookkeeping_errors:
        lines.append(f"✗ could not record the apply (audit, applied commit): {error}")
    repaired = f"{count(len(report.repairs), 'repair')}; " if report.repairs else ""
    unknown = f"{counts['unknown']} unknown, " if counts["unknown"] else ""
    unknown += f"{counts['conflicted']} conflicted, " if counts["conflicted"] else ""
    recorded = f"; {len(report.adoptions)} recorded" if report.adoptions else ""
    made = sum(1 for copy in report.copies if copy.copied)
    recorded += f"; {made} copied from another registry" if made else ""
    stopped = f" Stopped by {report.interrupted}." if report.interrupted else ""
    lines.append(
        f"Apply: {counts['applied']} applied, {counts['failed']} failed, {unknown}"
        f"{counts['not_attempted']} not attempted; {repaired}{in_sync} already in sync"
        f"{recorded}.{stopped}"
    )
    return escape.lines(lines)


def result_line(result: StepResult) -> str:
    """One step's outcome on one line, as apply prints it when the step finishes."""
    step = result.step
    line = f"{_OUTCOME_MARK[result.outcome]} {step.environment}: {step.model} {step.action()}"
    if result.outcome == "failed":
        line += f": FAILED: {result.error}"
    elif result.outcome == "unknown":
        line += f": OUTCOME UNKNOWN: {result.error}"
    elif result.outcome == "conflicted":
        line += f": SKIPPED, {result.error}"
    elif result.outcome == "not_attempted":
        line += ": not attempted"
    elif result.confirmed_after:
        line += f" (confirmed by re-reading after: {result.confirmed_after})"
    return escape.text(line)


def apply_json(report: ApplyReport) -> str:
    return json.dumps(report.records(), indent=2)
