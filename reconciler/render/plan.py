"""A plan as text (terminals), markdown (the pull request comment) and JSON (machines)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from reconciler.planning.review import Review, VersionFacts, key_metrics
from reconciler.planning.sourcing import PENDING_COPY, Copy, shown
from reconciler.planning.steps import Entry, Plan, Retirement, Step
from reconciler.records.bookkeeping import describe_owner
from reconciler.registry.workspaces import Workspace
from reconciler.render import escape
from reconciler.render.common import count, versions
from reconciler.render.escape import md_cell, md_code, md_text

FORMAT_VERSION = 1


def _action(entry: Entry) -> str:
    if entry.status == "in_sync":
        return "in sync"
    if entry.status == "promoted_onward":
        return f"in sync: promoted onward to {entry.onward_to}"
    if entry.status == "onward_pending":
        return f"moves on to {entry.onward_to} with {entry.onward_to}'s change: not there yet"
    return "; ".join(step.action() for step in entry.steps)


def _pinned(plan: Plan, entry: Entry) -> str:
    """`v15`; for a pin with `from:`, `v16 (staging v15)`, or `copy of staging v15` before the
    copy exists."""
    source = plan.source_of(entry.pin.environment, entry.pin.model)
    return shown(entry.pin.version, source.label() if source is not None else None)


def _headline(plan: Plan, entry: Entry) -> str:
    """`churn-model: v6 → v15`, or `churn-model: v15` when nothing moves; ROLLBACK when the
    pinned version is older than what serves now."""
    pinned = _pinned(plan, entry)
    if not entry.steps:
        return f"{entry.pin.model}: {pinned}"
    rollback = " ROLLBACK" if is_rollback(entry) else ""
    return f"{entry.pin.model}: {versions(entry.current)} → {pinned}{rollback}"


def is_rollback(entry: Entry) -> bool:
    if entry.pin.version == PENDING_COPY:
        return False  # a copy not made yet will be the newest version there
    return bool(entry.current) and all(int(v) > int(entry.pin.version) for v in entry.current)


def _summary(plan: Plan) -> str:
    counts = plan.counts
    in_sync = sum(1 for e in plan.entries if not e.steps and e.status != "onward_pending")
    onward = sum(1 for e in plan.entries if e.status == "onward_pending")
    changed = sum(1 for e in plan.entries if e.steps)
    kinds = ", ".join(
        count(counts[kind], noun)
        for kind, noun in (
            ("transition", "transition"),
            ("archive", "archive"),
            ("set_alias", "alias move"),
        )
    )
    retiring = sum(1 for r in plan.retirements if r.enabled)
    if retiring:
        kinds += f", {count(retiring, 'retirement')}"
    if plan.copies:
        kinds += f", {len(plan.copies)} {'copy' if len(plan.copies) == 1 else 'copies'}"
    record = f"; {len(plan.adoptions)} to record" if plan.adoptions else ""
    waiting = f", {onward} moving on with a higher environment" if onward else ""
    return f"{changed} to change, {in_sync} in sync{waiting} ({kinds}){record}"


def _retirement_line(retirement: Retirement) -> str:
    return f"{retirement.environment}: {retirement.model}: {_retirement_action(retirement)}"


def _retirement_action(retirement: Retirement) -> str:
    actions = "; ".join(step.action() for step in retirement.steps if step.kind != "disown")
    gate = "" if retirement.enabled else " [needs --prune, or prune: true in its settings]"
    return f"{actions or 'nothing serves'}{gate}"


def _groups(entries: Iterable[Entry]) -> list[tuple[str, list[Entry]]]:
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.pin.environment, []).append(entry)
    return list(groups.items())


def plan_text(plan: Plan) -> str:
    lines: list[str] = []
    if plan.workspace.name is not None:
        lines.append(f"workspace: {plan.workspace.describe()}")
    for environment, entries in _groups(plan.entries):
        lines.append(f"{environment} ({entries[0].target}){_registry_suffix(plan, environment)}")
        for entry in entries:
            pending = entry.steps or entry.status == "onward_pending"
            lines.append(f"  {'~' if pending else '='} {_headline(plan, entry)} ({_action(entry)})")
            if entry.pin.note:
                lines.append(f"      note: {entry.pin.note}")
            if entry.pin.confidence is not None:
                lines.append(f"      comparison confidence: {entry.pin.confidence:g}")
            if entry.record is not None and plan.owned_elsewhere(entry):
                lines.append(f"      owner: {_elsewhere(entry)}")
    lines.extend(_unreadable_lines(plan, "  ! {}: {}"))
    if plan.copies:
        lines.append("copy (into the environment's registry, before it moves; made once)")
        lines.extend(f"  > {_copy_line(copy)}" for copy in plan.copies)
    if plan.retirements:
        lines.append("retire (pin removed from an environment reconciler managed it in)")
        lines.extend(f"  - {_retirement_line(r)}" for r in plan.retirements)
    if plan.unmanaged:
        lines.append("unmanaged (holds a managed stage or alias without a pin; never touched)")
        for item in plan.unmanaged:
            lines.append(
                f"  ? {item.environment}: {item.model} {item.target} {versions(item.versions)}"
            )
    if plan.adoptions:
        lines.append(
            "record (in sync; apply records its applied commit and ownership, moves nothing)"
        )
        lines.extend(f"  + {a.environment}: {a.describe()}" for a in plan.adoptions)
    if not plan.entries:
        lines.append("No pins in scope.")
    lines.append(f"Plan: {_summary(plan)}.")
    lines.append(f"Checksum: {plan.checksum}")
    return escape.lines(lines)


def plan_markdown(plan: Plan, reviews: Mapping[tuple[str, str], Review] | None = None) -> str:
    title = "changes pending" if plan.has_changes else "in sync"
    lines = [f"### Registry plan: {title}", ""]
    if plan.workspace.name is not None:
        lines += [f"Workspace: `{plan.workspace.describe()}`", ""]
    if plan.registries:
        lines += [
            "| Environment | Registry |",
            "|---|---|",
            *(
                f"| {env} | {md_cell(md_code(_registry_name(registry, workspace)))} |"
                for env, registry, workspace in plan.registries
            ),
            "",
        ]
    lines += [
        "| Environment | Model | Registry now | Pinned | Action |",
        "|---|---|---|---|---|",
    ]
    for entry in plan.entries:
        action = md_text(_action(entry))
        if entry.steps:
            action = f"**{action}**"
        if is_rollback(entry):
            action = f"⏪ **ROLLBACK** {action}"
        if entry.pin.note:
            action += f"<br>_{md_text(entry.pin.note)}_"
        lines.append(
            f"| {entry.pin.environment} | {md_cell(md_code(entry.pin.model))} "
            f"| {versions(entry.current)} | {md_cell(md_text(_pinned(plan, entry)))} "
            f"| {md_cell(action)} |"
        )
    if plan.copies:
        lines += ["", "**Copy** (into the environment's registry before it moves; made once):", ""]
        lines.extend(f"- {md_text(_copy_line(copy))}" for copy in plan.copies)
    foreign = [e for e in plan.entries if e.record is not None and plan.owned_elsewhere(e)]
    if foreign:
        lines += ["", "**Owned by another repository:**", ""]
        lines.extend(
            f"- {e.pin.environment} {md_code(e.pin.model)}: {md_text(_elsewhere(e))}"
            for e in foreign
        )
    if plan.unreadable:
        lines += ["", md_text(_UNREADABLE), ""]
        lines += [
            f"- {md_code(model)}: {md_text(f'reconciler.state: {problem}')}"
            for model, problem in plan.unreadable
        ]
    for entry in plan.entries:
        review = (reviews or {}).get((entry.pin.environment, entry.pin.model))
        if review is not None:
            lines += ["", *_review_markdown(entry, review)]
    if plan.retirements:
        lines += ["", "**Retire** (pin removed):", ""]
        lines.extend(
            f"- {r.environment}: {md_code(r.model)}: {md_text(_retirement_action(r))}"
            for r in plan.retirements
        )
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
                f"| {item.environment} | {md_cell(md_code(item.model))} "
                f"| {item.target} {versions(item.versions)} |"
            )
        lines += ["", "</details>"]
    lines += ["", f"{_summary(plan)}. Checksum `{plan.checksum}`"]
    return "\n".join(lines)


def _registry_name(registry: str, workspace: Workspace) -> str:
    return f"{registry} (workspace {workspace.name})" if workspace.name else registry


def _registry_suffix(plan: Plan, environment: str) -> str:
    found = plan.registry_of(environment)
    return f" in {_registry_name(*found)}" if found is not None else ""


def _copy_line(copy: Copy) -> str:
    size = f", {megabytes(copy.size)}" if copy.size is not None else ""
    return (
        f"{copy.environment}: {copy.model}: {copy.source.label()} from {copy.source.registry} "
        f"into {copy.registry}{size}"
    )


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size:,} bytes"


def _elsewhere(entry: Entry) -> str:
    assert entry.record is not None
    return (
        f"another repository, {describe_owner(entry.record)}; apply changes it only with "
        "--take-ownership"
    )


_UNREADABLE = (
    "unreadable state tags (apply refuses these models; `reconciler unlock` says how to fix)"
)


def _unreadable_lines(plan: Plan, line: str) -> list[str]:
    if not plan.unreadable:
        return []
    return [
        _UNREADABLE,
        *(line.format(model, f"reconciler.state: {problem}") for model, problem in plan.unreadable),
    ]


def _owner_json(plan: Plan, entry: Entry) -> dict[str, Any] | None:
    record = entry.record
    if record is None or record.owner is None:
        return None
    return {
        "repository": record.owner,
        "name": record.owner_name,
        "this_repository": not plan.owned_elsewhere(entry),
    }


def _review_markdown(entry: Entry, review: Review) -> list[str]:
    pin = entry.pin
    badge = " ⏪ ROLLBACK" if is_rollback(entry) else ""
    old = review.old[0] if review.old else None
    head = f"{_as_version(old.version)} → " if old else ""
    new_version = _as_version(review.new.version)  # `staging v15` for a copy: its source
    lines = [f"#### {pin.environment}: {md_code(pin.model)} {head}{new_version}{badge}", ""]
    names = key_metrics(list(review.gated_metrics), review.new.metrics, old.metrics if old else {})
    if names:
        columns = (
            f"| Metric | {_as_version(old.version)} | {new_version} | Δ | From |"
            if old
            else f"| Metric | {new_version} | From |"
        )
        lines += [columns, "|---|---|---|---|---|" if old else "|---|---|---|"]
        for name in names:
            new = review.new.metrics.get(name)
            origin = md_cell(md_text(_origin(name, review.new, old)))
            if old is None:
                lines.append(f"| {md_cell(md_text(name))} | {_number(new)} | {origin} |")
                continue
            before = old.metrics.get(name)
            delta = f"{new - before:+.4g}" if new is not None and before is not None else "n/a"
            lines.append(
                f"| {md_cell(md_text(name))} | {_number(before)} | {_number(new)} | {delta} "
                f"| {origin} |"
            )
        lines.append("")
    facts = [f"{new_version} created {_when(review.new.created)}"]
    if review.new.creator:
        facts[0] += f" by {md_text(review.new.creator)}"
    if pin.confidence is not None:
        facts.append(f"comparison confidence {pin.confidence:g}")
    links = [f"[{_as_version(f.version)}]({f.link})" for f in (review.new, *review.old) if f.link]
    if links:
        facts.append("MLflow: " + ", ".join(links))
    lines.append(" · ".join(facts))
    if len(review.old) > 1:
        lines.append(f"Also archives {versions(v.version for v in review.old[1:])}.")
    if review.policy:
        lines += ["", "Policy passed: " + "; ".join(md_text(rule) for rule in review.policy)]
    return lines


def _as_version(shown: str) -> str:
    """`v15` for a number; a copied version's label (`staging v15`) as it is."""
    return f"v{shown}" if shown.isdigit() else md_text(shown)


def _origin(name: str, new: VersionFacts, old: VersionFacts | None) -> str:
    """Where the row's figures were read (`run`, `model, eval`): once when they agree, else
    per version."""
    found = [(f.version, f.origins[name]) for f in (old, new) if f and name in f.origins]
    if len({origin for _v, origin in found}) == 1:
        return found[0][1]
    return " · ".join(f"v{version} {origin}" for version, origin in found)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _when(millis: int | None) -> str:
    if millis is None:
        return "(time unknown)"
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def plan_json(plan: Plan) -> str:
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "workspace": plan.workspace.name,
        "workspace_chosen_by": plan.workspace.chosen_by,
        "has_changes": plan.has_changes,
        "checksum": plan.checksum,
        "counts": plan.counts,
        "changes": [_step_json(step) for step in plan.steps],
        "pins": [
            {
                **_entry_json(entry),
                "owner": _owner_json(plan, entry),
                # `from:`: the version's number where it comes from; pinned_version is the
                # copy's here (null until apply makes it).
                "source": _entry_source(plan, entry),
            }
            for entry in plan.entries
        ],
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
        # Pinned models whose state tag cannot be read: apply refuses them.
        "unreadable_states": [{"model": m, "problem": p} for m, p in plan.unreadable],
        # Versions apply copies from another registry before it moves them.
        "copies": [
            {
                "environment": c.environment,
                "model": c.model,
                "source": asdict(c.source),
                "registry": c.registry,
                "bytes": c.size,
            }
            for c in plan.copies
        ],
        # Where each environment lives, when the repository uses more than one registry.
        "registries": {
            env: {"registry": registry, "workspace": workspace.name}
            for env, registry, workspace in plan.registries
        },
    }
    return json.dumps(document, indent=2)


def _step_json(step: Step) -> dict[str, Any]:
    data = asdict(step)
    data["archives"] = list(step.archives)
    data["expect"] = dict(step.expect)  # version → stage the plan relies on (compare-and-set)
    del data["rank"], data["sequence"]
    if step.version == PENDING_COPY:
        data["version"] = None  # the copy's number here is known once apply makes it
        data["expect"] = {v: s for v, s in step.expect if v != PENDING_COPY}
    return data


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "environment": entry.pin.environment,
        "model": entry.pin.model,
        "file": entry.pin.file,
        "pinned_version": None if entry.pin.version == PENDING_COPY else entry.pin.version,
        "target": entry.target,
        "current_versions": list(entry.current),
        "status": entry.status,
        "promoted_onward_to": entry.onward_to,
        "note": entry.pin.note,
    }


def _entry_source(plan: Plan, entry: Entry) -> dict[str, Any] | None:
    source = plan.source_of(entry.pin.environment, entry.pin.model)
    return asdict(source) if source is not None else None
