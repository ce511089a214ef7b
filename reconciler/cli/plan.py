"""`reconciler plan`: what apply would change (a dry run)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from reconciler import api
from reconciler.cli.context import AppContext
from reconciler.cli.options import ENV_OPTION, MODEL_OPTION, format_option
from reconciler.errors import EXIT_CHANGES_PENDING
from reconciler.planning.scope import Scope
from reconciler.render import plan as render_plan

FORMATS = {
    "text": render_plan.plan_text,
    "markdown": render_plan.plan_markdown,
    "json": render_plan.plan_json,
}


@click.command()
@ENV_OPTION
@MODEL_OPTION
@format_option(sorted(FORMATS), "Output format (markdown for pull request comments).")
@click.option(
    "--prune",
    is_flag=True,
    help="Plan the retirement of models whose pins were removed (as `apply --prune` would).",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when in sync, 2 when changes are pending, 1 on error.",
)
@click.pass_obj
def plan(
    obj: AppContext,
    environments: Sequence[str],
    models: Sequence[str],
    output_format: str,
    prune: bool,
    detailed_exitcode: bool,
) -> None:
    """Show what apply would change in the registry (a dry run)."""
    from reconciler.planning.review import ui_base

    result, reviews = api.make_plan(
        obj.repository_root(),
        obj.connect,
        Scope.of(environments, models, prune),
        ui_base=ui_base(obj.tracking_uri),
        with_reviews=output_format == "markdown",
    )
    if output_format == "markdown":
        click.echo(render_plan.plan_markdown(result, reviews))
    else:
        click.echo(FORMATS[output_format](result))
    if detailed_exitcode and result.has_changes:
        sys.exit(EXIT_CHANGES_PENDING)
