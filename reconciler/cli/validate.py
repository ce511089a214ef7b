"""`reconciler validate`: offline checks of pins and settings."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler import api
from reconciler.cli.context import AppContext
from reconciler.cli.options import format_option


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option(
    ["text", "json", "github"],
    "json: the pin count and the environments in promotion order (name, stage, alias, "
    "requires, pins); github: problems as workflow-command annotations on stdout.",
)
@click.pass_obj
def validate(obj: AppContext, paths: Sequence[Path], output_format: str) -> None:
    """Check pins and environment settings offline (no registry needed).

    With PATHS, check those files or folders; else everything under environments/.
    """
    from reconciler.planning.promotion_order import promotion_order

    desired = api.validate(obj.repository_root(), paths)
    environments = {pin.environment for pin in desired.pins} | set(desired.environments)
    if output_format == "json":
        pins = Counter(pin.environment for pin in desired.pins)
        listed = [
            {
                "name": env.name,
                "stage": env.stage,
                "alias": env.alias,
                "requires": env.requires,
                "pins": pins[env.name],
            }
            for env in promotion_order(desired)
        ]
        click.echo(json.dumps({"valid": True, "pins": len(desired.pins), "environments": listed}))
        return
    click.echo(f"ok: {len(desired.pins)} pin(s) in {len(environments)} environment(s) are valid")
