"""`reconciler import`: pins for what the registry serves now."""

from __future__ import annotations

from collections.abc import Sequence

import click

from reconciler import api
from reconciler.cli.context import AppContext
from reconciler.cli.options import ENV_OPTION, MODEL_OPTION, format_option


@click.command(name="import")
@ENV_OPTION
@MODEL_OPTION
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the version of existing pins that differ from the registry (else they are "
    "only reported).",
)
@format_option(["text", "json"])
@click.pass_obj
def import_command(
    obj: AppContext,
    environments: Sequence[str],
    models: Sequence[str],
    overwrite: bool,
    output_format: str,
) -> None:
    """Write pins for what the registry serves now: adopt an existing registry.

    For each environment (those under environments/, plus staging and production), a pin for
    every model holding a version in its stage (or its alias, for alias-only environments).
    Writes files only, never the registry; existing pins are kept.
    """
    from reconciler.render.importing import import_json, import_text

    registry = obj.registry()
    uri = str(getattr(registry, "display_uri", None) or obj.tracking_uri or "the default registry")
    result = api.import_pins(
        obj.repository_root(), obj.connect, uri, environments, models, overwrite=overwrite
    )
    click.echo(import_json(result) if output_format == "json" else import_text(result))
