"""`reconciler history`: a model's promotions and rollbacks from git, marked applied."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import click

from reconciler import api
from reconciler.cli.context import AppContext
from reconciler.cli.options import ENV_OPTION, format_option
from reconciler.render import history as render_history


@click.command()
@click.argument("model")
@ENV_OPTION
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="Also say which version each environment pinned at TIME (ISO 8601, e.g. 2026-11-24 or "
    "2026-11-24T10:00:00Z; UTC unless an offset is given).",
)
@format_option(["text", "json"])
@click.pass_obj
def history(
    obj: AppContext,
    model: str,
    environments: Sequence[str],
    at: str | None,
    output_format: str,
) -> None:
    """Every promotion and rollback of MODEL from the git history of its pins, newest first,
    marked applied when the registry's audit records name the commit (or a later commit that
    still pins the version). Needs full history: a shallow clone is refused."""
    when = _parse_time(at) if at else None
    result = api.history(obj.repository_root(), obj.connect, model, environments, when)
    click.echo(
        render_history.history_json(result)
        if output_format == "json"
        else render_history.history_text(result)
    )


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-24T10:00:00Z)", param_hint="--at"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if len(text.strip()) == 10:  # a date alone means the end of that day
        value = value.replace(hour=23, minute=59, second=59)
    return value
