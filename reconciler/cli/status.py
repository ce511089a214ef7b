"""`reconciler status`: environment by model, pinned against the registry."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from reconciler import api
from reconciler.cli.context import AppContext
from reconciler.cli.options import ENV_OPTION, MODEL_OPTION, format_option
from reconciler.errors import EXIT_CHANGES_PENDING
from reconciler.planning.scope import Scope
from reconciler.render import status as render_status

STATUS_FORMATS = {
    "text": render_status.status_text,
    "markdown": render_status.status_markdown,
    "json": render_status.status_json,
}


@click.command()
@ENV_OPTION
@MODEL_OPTION
@format_option(sorted(STATUS_FORMATS))
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when every pin is in sync, 2 when any is not (as plan), 1 on error.",
)
@click.pass_obj
def status(
    obj: AppContext,
    environments: Sequence[str],
    models: Sequence[str],
    output_format: str,
    detailed_exitcode: bool,
) -> None:
    """One table: environment x model, the pinned version, what the registry has, in sync or
    not, and the commit last applied there."""
    rows = api.status(obj.repository_root(), obj.connect, Scope.of(environments, models))
    click.echo(STATUS_FORMATS[output_format](rows))
    if detailed_exitcode and not all(row.in_sync for row in rows):
        sys.exit(EXIT_CHANGES_PENDING)
