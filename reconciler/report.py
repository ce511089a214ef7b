"""Renders plans and apply results as text (terminals), markdown (reviews) and JSON (machines).

Pure: every function returns a string; the CLI decides where it goes.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from reconciler.apply.executor import ApplyReport, StepResult
from reconciler.gitrepo import PinChange
from reconciler.history import History
from reconciler.plan import Entry, Plan, Retirement, Step
from reconciler.review import Review, key_metrics
from reconciler.status import StatusRow

FORMAT_VERSION = 1


def _v(versions: Iterable[str]) -> str:
    shown = ", ".join(f"v{v}" for v in versions)
    return shown or "none"


def _action(entry: Entry) -> str:
    if entry.status == "in_sync":
        return "in sync"
    if entry.status == "promoted_onward":
        return f"in sync: promoted onward to {entry.onward_to}"
    if entry.status == "onward_pending":
        return f"moves on to {entry.onward_to} with {entry.onward_to}'s change: not there yet"
    return "; ".join(step.action() for step in entry.steps)


def _headline(entry: Entry) -> str:
    """`churn-model: v6 → v15`, or `churn-model: v15` when nothing moves; ROLLBACK when the
    pinned version is older than what serves now."""
    pinned = f"v{entry.pin.version}"
    if not entry.steps:
        return f"{entry.pin.model}: {pinned}"
    rollback = " ROLLBACK" if is_rollback(entry) else ""
    return f"{entry.pin.model}: {_v(entry.current)} → {pinned}{rollback}"


def is_rollback(entry: Entry) -> bool:
    return bool(entry.current) and all(int(v) > int(entry.pin.version) for v in entry.current)


def _summary(plan: Plan) -> str:
    counts = plan.counts
    in_sync = sum(1 for e in plan.entries if not e.steps and e.status != "onward_pending")
    onward = sum(1 for e in plan.entries if e.status == "onward_pending")
    changed = sum(1 for e in plan.entries if e.steps)
    kinds = ", ".join(
        _count(counts[kind], noun)
        for kind, noun in (
            ("transition", "transition"),
            ("archive", "archive"),
            ("set_alias", "alias move"),
        )
    )
    retiring = sum(1 for r in plan.retirements if r.enabled)
    if retiring:
        kinds += f", {_count(retiring, 'retirement')}"
    record = f"; {len(plan.adoptions)} to record" if plan.adoptions else ""
    waiting = f", {onward} moving on with a higher environment" if onward else ""
    return f"{changed} to change, {in_sync} in sync{waiting} ({kinds}){record}"


def _retirement_line(retirement: Retirement) -> str:
    actions = "; ".join(step.action() for step in retirement.steps if step.kind != "disown")
    gate = "" if retirement.enabled else " [needs --prune, or prune: true in its settings]"
    return f"{retirement.environment}: {retirement.model}: {actions or 'nothing serves'}{gate}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _groups(entries: Iterable[Entry]) -> list[tuple[str, list[Entry]]]:
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.pin.environment, []).append(entry)
    return list(groups.items())


# -- plan --


def plan_text(plan: Plan) -> str:
    lines: list[str] = []
    for environment, entries in _groups(plan.entries):
        lines.append(f"{environment} ({entries[0].target})")
        for entry in entries:
            pending = entry.steps or entry.status == "onward_pending"
            lines.append(f"  {'~' if pending else '='} {_headline(entry)} ({_action(entry)})")
            if entry.pin.note:
                lines.append(f"      note: {entry.pin.note}")
            if entry.pin.confidence is not None:
                lines.append(f"      comparison confidence: {entry.pin.confidence:g}")
    if plan.retirements:
        lines.append("retire (pin removed from an environment reconciler managed it in)")
        lines.extend(f"  - {_retirement_line(r)}" for r in plan.retirements)
    if plan.unmanaged:
        lines.append("unmanaged (holds a managed stage or alias without a pin; never touched)")
        for item in plan.unmanaged:
            lines.append(f"  ? {item.environment}: {item.model} {item.target} {_v(item.versions)}")
    if plan.adoptions:
        lines.append(
            "record (in sync; apply records its applied commit and ownership, moves nothing)"
        )
        lines.extend(f"  + {a.environment}: {a.describe()}" for a in plan.adoptions)
    if not plan.entries:
        lines.append("No pins in scope.")
    lines.append(f"Plan: {_summary(plan)}.")
    lines.append(f"Checksum: {plan.checksum}")
    return "\n".join(lines)


def plan_markdown(plan: Plan, reviews: Mapping[tuple[str, str], Review] | None = None) -> str:
    title = "changes pending" if plan.has_changes else "in sync"
    lines = [
        f"### Registry plan: {title}",
        "",
        "| Environment | Model | Registry now | Pinned | Action |",
        "|---|---|---|---|---|",
    ]
    for entry in plan.entries:
        action = _action(entry)
        if entry.steps:
            action = f"**{action}**"
        if is_rollback(entry):
            action = f"⏪ **ROLLBACK** {action}"
        if entry.pin.note:
            action += f"<br>_{entry.pin.note}_"
        lines.append(
            f"| {entry.pin.environment} | `{entry.pin.model}` | {_v(entry.current)} "
            f"| v{entry.pin.version} | {_md_escape(action)} |"
        )
    for entry in plan.entries:
        review = (reviews or {}).get((entry.pin.environment, entry.pin.model))
        if review is not None:
            lines += ["", *_review_markdown(entry, review)]
    if plan.retirements:
        lines += ["", "**Retire** (pin removed):", ""]
        lines.extend(f"- {_md_escape(_retirement_line(r))}" for r in plan.retirements)
    if plan.unmanaged:
        lines += [
            "",
            f"<details><summary>Unmanaged: {len(plan.unmanaged)} (never touched)</summary>",
            "",
            "| Environment | Model | Holds |",
            "|---|---|---|",
        ]
        for item in plan.unmanaged:
            lines.append(
                f"| {item.environment} | `{item.model}` | {item.target} {_v(item.versions)} |"
            )
        lines += ["", "</details>"]
    lines += ["", f"{_summary(plan)}. Checksum `{plan.checksum}`"]
    return "\n".join(lines)


def _review_markdown(entry: Entry, review: Review) -> list[str]:
    pin = entry.pin
    badge = " ⏪ ROLLBACK" if is_rollback(entry) else ""
    old = review.old[0] if review.old else None
    head = f"v{old.version} → " if old else ""
    lines = [f"#### {pin.environment}: `{pin.model}` {head}v{pin.version}{badge}", ""]
    names = key_metrics(list(review.gated_metrics), review.new.metrics, old.metrics if old else {})
    if names:
        columns = (
            f"| Metric | v{old.version} | v{pin.version} | Δ |"
            if old
            else f"| Metric | v{pin.version} |"
        )
        lines += [columns, "|---|---|---|---|" if old else "|---|---|"]
        for name in names:
            new = review.new.metrics.get(name)
            if old is None:
                lines.append(f"| {name} | {_number(new)} |")
                continue
            before = old.metrics.get(name)
            delta = f"{new - before:+.4g}" if new is not None and before is not None else "n/a"
            lines.append(f"| {name} | {_number(before)} | {_number(new)} | {delta} |")
        lines.append("")
    facts = [f"v{pin.version} created {_when(review.new.created)}"]
    if review.new.creator:
        facts[0] += f" by {review.new.creator}"
    if pin.confidence is not None:
        facts.append(f"comparison confidence {pin.confidence:g}")
    links = [f"[v{f.version}]({f.link})" for f in (review.new, *review.old) if f.link]
    if links:
        facts.append("MLflow: " + ", ".join(links))
    lines.append(" · ".join(facts))
    if len(review.old) > 1:
        lines.append(f"Also archives {_v(v.version for v in review.old[1:])}.")
    if review.policy:
        lines += ["", "Policy passed: " + "; ".join(review.policy)]
    return lines


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _when(millis: int | None) -> str:
    if millis is None:
        return "(time unknown)"
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def plan_json(plan: Plan) -> str:
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "has_changes": plan.has_changes,
        "checksum": plan.checksum,
        "counts": plan.counts,
        "changes": [_step_json(step) for step in plan.steps],
        "pins": [_entry_json(entry) for entry in plan.entries],
        "unmanaged": [asdict(item) for item in plan.unmanaged],
        "retirements": [
            {
                "environment": r.environment,
                "model": r.model,
                "enabled": r.enabled,
                "changes": [_step_json(step) for step in r.steps],
            }
            for r in plan.retirements
        ],
        # Bookkeeping apply records for in-sync pins (adoption); not changes.
        "records": [asdict(a) for a in plan.adoptions],
    }
    return json.dumps(document, indent=2)


def _step_json(step: Step) -> dict[str, Any]:
    data = asdict(step)
    data["archives"] = list(step.archives)
    data["expect"] = dict(step.expect)  # version → stage the plan relies on (compare-and-set)
    del data["rank"], data["sequence"]
    return data


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "environment": entry.pin.environment,
        "model": entry.pin.model,
        "file": entry.pin.file,
        "pinned_version": entry.pin.version,
        "target": entry.target,
        "current_versions": list(entry.current),
        "status": entry.status,
        "promoted_onward_to": entry.onward_to,
        "note": entry.pin.note,
    }


# -- apply --

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
    lines = [] if streamed else [result_line(result) for result in report.results]
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
    repaired = f"{_count(len(report.repairs), 'repair')}; " if report.repairs else ""
    unknown = f"{counts['unknown']} unknown, " if counts["unknown"] else ""
    unknown += f"{counts['conflicted']} conflicted, " if counts["conflicted"] else ""
    recorded = f"; {len(report.adoptions)} recorded" if report.adoptions else ""
    stopped = f" Stopped by {report.interrupted}." if report.interrupted else ""
    lines.append(
        f"Apply: {counts['applied']} applied, {counts['failed']} failed, {unknown}"
        f"{counts['not_attempted']} not attempted; {repaired}{in_sync} already in sync"
        f"{recorded}.{stopped}"
    )
    return "\n".join(lines)


def result_line(result: StepResult) -> str:
    """One step's outcome, as apply prints it when the step finishes."""
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
    return line


def apply_json(report: ApplyReport) -> str:
    return json.dumps(report.records(), indent=2)


# -- history --


def history_text(history: History) -> str:
    lines = []
    if history.at is not None:
        lines.append(f"pinned at {history.at.isoformat()}:")
        for environment, change in history.pinned_at:
            if change is None or change.after is None:
                lines.append(f"  {environment}: no pin")
            else:
                lines.append(
                    f"  {environment}: v{change.after} (commit {change.commit[:10]}, "
                    f"{change.date.isoformat()})"
                )
        lines.append("")
    lines.append(f"{history.model}: {len(history.entries)} change(s), newest first")
    for entry in history.entries:
        change = entry.change
        before = f"v{change.before}" if change.before else "none"
        after = f"v{change.after}" if change.after else "removed"
        badge = " ROLLBACK" if entry.rollback else ""
        applied = "applied" if entry.applied else "not applied"
        lines.append(
            f"{change.date.strftime('%Y-%m-%d %H:%M')}  {change.commit[:10]}  "
            f"{change.environment}: {before} → {after}{badge}  [{applied}]  "
            f"{change.author}: {change.summary}"
        )
    return "\n".join(lines)


def history_json(history: History) -> str:
    def change_json(change: PinChange) -> dict[str, Any]:
        return {
            "commit": change.commit,
            "author": change.author,
            "date": change.date.isoformat(),
            "environment": change.environment,
            "from_version": change.before,
            "to_version": change.after,
            "summary": change.summary,
        }

    document: dict[str, Any] = {
        "model": history.model,
        "changes": [
            {**change_json(e.change), "rollback": e.rollback, "applied": e.applied}
            for e in history.entries
        ],
    }
    if history.at is not None:
        document["at"] = history.at.isoformat()
        document["pinned_at"] = {
            env: (change_json(change) if change else None) for env, change in history.pinned_at
        }
    return json.dumps(document, indent=2)


# -- status --


def status_text(rows: Sequence[StatusRow]) -> str:
    header = ("ENVIRONMENT", "MODEL", "PINNED", "REGISTRY", "IN SYNC", "LAST APPLIED")
    table = [header] + [_status_cells(row) for row in rows]
    widths = [max(_width(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(_pad(cell, w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    if not rows:
        lines.append("No pins.")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Terminal columns: CJK and other wide characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def status_markdown(rows: Sequence[StatusRow]) -> str:
    lines = [
        "| Environment | Model | Pinned | Registry | In sync | Last applied |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        env, model, pinned, registry, _in_sync, applied = _status_cells(row)
        lines.append(
            f"| {env} | `{model}` | {pinned} | {_md_escape(registry)} | "
            f"{'✅' if row.in_sync else '❌'} | {applied} |"
        )
    return "\n".join(lines)


def status_json(rows: Sequence[StatusRow]) -> str:
    return json.dumps(
        [
            {
                "environment": row.environment,
                "model": row.model,
                "pinned_version": row.pinned,
                "target": row.target,
                "registry_versions": list(row.registry),
                "alias_version": row.alias_version,
                "in_sync": row.in_sync,
                "last_applied_commit": row.last_applied_commit,
            }
            for row in rows
        ],
        indent=2,
    )


def _registry_cell(row: StatusRow) -> str:
    if row.alias is None:
        return f"{row.target}: {_v(row.registry)}"
    stage = row.target.partition(" + @")[0]
    points = f"v{row.alias_version}" if row.alias_version else "unset"
    return f"{stage}: {_v(row.registry)} + @{row.alias}: {points}"


def _status_cells(row: StatusRow) -> tuple[str, str, str, str, str, str]:
    return (
        row.environment,
        row.model,
        f"v{row.pinned}",
        _registry_cell(row),
        "yes" if row.in_sync else "NO",
        row.last_applied_commit[:12] if row.last_applied_commit else "-",
    )
