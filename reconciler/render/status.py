"""The status table (environment x model) as text, markdown and JSON."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence

from reconciler.planning.sourcing import PENDING_COPY
from reconciler.planning.status import StatusRow
from reconciler.render import escape
from reconciler.render.common import versions
from reconciler.render.escape import md_cell, md_code, md_text


def status_text(rows: Sequence[StatusRow]) -> str:
    header = ("ENVIRONMENT", "MODEL", "PINNED", "REGISTRY", "IN SYNC", "LAST APPLIED")
    table = [header] + [tuple(escape.text(cell) for cell in _status_cells(row)) for row in rows]
    widths = [max(_width(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(_pad(cell, w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    if not rows:
        lines.append("No pins.")
    return "\n".join(_workspace_line(rows, "workspace: {}") + lines)


def _workspace_line(rows: Sequence[StatusRow], form: str) -> list[str]:
    """Where the registry columns were read, when the registry has workspaces."""
    if not rows or rows[0].workspace.name is None:
        return []
    return [form.format(rows[0].workspace.describe())]


def _width(text: str) -> int:
    """Terminal columns: CJK and other wide characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def status_markdown(rows: Sequence[StatusRow]) -> str:
    lines = _workspace_line(rows, "Workspace: `{}`\n")
    lines += [
        "| Environment | Model | Pinned | Registry | In sync | Last applied |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        env, model, pinned, registry, _in_sync, applied = _status_cells(row)
        lines.append(
            f"| {env} | {md_cell(md_code(model))} | {md_cell(md_text(pinned))} | "
            f"{md_cell(md_text(registry))} | "
            f"{'✅' if row.in_sync else '❌'} | {md_cell(md_text(applied))} |"
        )
    return "\n".join(lines)


def status_json(rows: Sequence[StatusRow]) -> str:
    return json.dumps(
        [
            {
                "environment": row.environment,
                "model": row.model,
                # A copy not made yet has no number here: null, and `source` says which.
                "pinned_version": None if row.pinned == PENDING_COPY else row.pinned,
                "source": row.source,
                "target": row.target,
                "registry_versions": list(row.registry),
                "alias_version": row.alias_version,
                "in_sync": row.in_sync,
                "last_applied_commit": row.last_applied_commit,
                "workspace": row.workspace.name,
                "state_problem": row.state_problem,
            }
            for row in rows
        ],
        indent=2,
    )


def _registry_cell(row: StatusRow) -> str:
    if row.alias is None:
        return f"{row.target}: {versions(row.registry)}"
    stage = row.target.partition(" + @")[0]
    points = f"v{row.alias_version}" if row.alias_version else "unset"
    return f"{stage}: {versions(row.registry)} + @{row.alias}: {points}"


def _status_cells(row: StatusRow) -> tuple[str, str, str, str, str, str]:
    return (
        row.environment,
        row.model,
        row.shown_pinned,
        _registry_cell(row),
        "yes" if row.in_sync else "NO",
        _last_applied(row),
    )


def _last_applied(row: StatusRow) -> str:
    if row.state_problem is not None:
        # Not "-": that would read as "never applied". The tag says something we cannot read.
        return "unreadable state tag (see `reconciler plan`)"
    return row.last_applied_commit[:12] if row.last_applied_commit else "-"
