"""`reconciler unlock`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import click

from reconciler import api
from reconciler.cli.context import AppContext
from reconciler.cli.options import MODEL_OPTION, format_option
from reconciler.cli.output import print_line


@click.command()
@MODEL_OPTION
@click.option(
    "--force",
    is_flag=True,
    help="Remove every lease, also those of applies that look alive (only when you know they "
    "are not running); rewrite state tags this version cannot read, keeping what can be read.",
)
@format_option(["text", "json"])
@click.pass_obj
def unlock(obj: AppContext, models: Sequence[str], force: bool, output_format: str) -> None:
    """Remove model leases left by applies that died: expired ones and those whose process is
    gone on this host (Terraform's force-unlock). Says what it removed and what it kept, and
    which fences applies that never recorded left behind (kept: `apply` of that commit or a
    descendant records them)."""
    report = api.unlock(obj.repository_root(), obj.connect, models, force)
    now = datetime.now(UTC).timestamp()
    if output_format == "json":
        items = [
            {"kind": u.kind, "model": u.model, "removed": u.removed, "why": u.why,
             "holder": u.record.holder if u.record else None,
             "commit": u.record.commit if u.record else None,
             "expires": u.record.expires if u.record else None}
            for u in report.items
        ] + [
            {"kind": "fence", "model": f.model, "environment": f.environment, "removed": False,
             "why": "an apply of this commit may have changed it and never recorded it",
             "holder": None, "commit": f.commit, "expires": None, "version": f.version}
            for f in report.fences
        ]  # fmt: skip
        click.echo(json.dumps(items, indent=2))
        return
    for item in report.items:
        if item.record is None:
            verb = "rewritten" if item.removed else "kept"
            print_line(f"{item.model}: state tag {verb} ({item.why})")
            continue
        verb = f"removed ({item.why})" if item.removed else f"kept ({item.why}; --force removes it)"
        print_line(f"{item.model}: lease {verb}: {item.record.describe(now)}")
    for fence in report.fences:
        # The fence holds while what that apply put there serves (apply/guards.py `fences`).
        where = f" while v{fence.version} serves there" if fence.version else ""
        print_line(
            f"{fence.model}: {fence.environment}: fenced by commit {fence.commit[:12]}{where}, "
            "whose apply may have changed it and never recorded it; kept (an apply of that "
            "commit or a descendant records it; `apply --force` overrides)"
        )
    removed = sum(1 for u in report.items if u.removed)
    fences = f"; {len(report.fences)} unrecorded fence(s) kept" if report.fences else ""
    click.echo(f"Unlock: {removed} removed, {len(report.items) - removed} kept{fences}.")
