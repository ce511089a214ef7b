"""A model's promotion history as text and JSON."""

from __future__ import annotations

import json
from typing import Any

from reconciler.gitrepo import PinChange
from reconciler.records.history import History
from reconciler.render import escape


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
        if entry.copy is not None:
            # A pin with `from:` names the source's number; the registry holds its own copy.
            applied += f" as v{entry.copy} here"
        if entry.took_over_from:
            applied += f", taken over from {entry.took_over_from}"
        lines.append(
            f"{change.date.strftime('%Y-%m-%d %H:%M')}  {change.commit[:10]}  "
            f"{change.environment}: {before} → {after}{badge}  [{applied}]  "
            f"{change.author}: {change.summary}"
        )
    return escape.lines(lines)


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
            {
                **change_json(e.change),
                "rollback": e.rollback,
                "copy_version": e.copy,
                "applied": e.applied,
                "took_over_from": e.took_over_from,
            }
            for e in history.entries
        ],
    }
    if history.at is not None:
        document["at"] = history.at.isoformat()
        document["pinned_at"] = {
            env: (change_json(change) if change else None) for env, change in history.pinned_at
        }
    return json.dumps(document, indent=2)
