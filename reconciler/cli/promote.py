"""`reconciler promote`: edit or create a pin (the pull request is the promotion)."""

from __future__ import annotations

import json

import click

from reconciler.cli.context import AppContext
from reconciler.cli.options import format_option
from reconciler.cli.output import print_line


@click.command()
@click.argument("model")
@click.option(
    "--to", "environment", required=True, metavar="ENV", help="The environment to promote to."
)
@click.option(
    "--version",
    metavar="V",
    help="The version to pin. Default: the version pinned in the previous environment of the "
    "promotion order (`requires`, or staging for production), else the registry's latest "
    "Staging version.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1),
    help="Comparison confidence (0 to 1) of the evaluation behind it; kept in the pin.",
)
@click.option(
    "--note",
    metavar="TEXT",
    help="Why this version (kept in the pin as `note:`). Without it, a note about the previous "
    "version is dropped when the version changes.",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Do not ask the registry whether the version exists and is READY (plan still will).",
)
@click.option("--branch", metavar="NAME", help="Create and switch to this branch, then commit.")
@click.option("--commit", is_flag=True, help="Commit the pin change.")
@format_option(
    ["text", "json"],
    "json: the promote-model record (model_name, environment, new_version, new_stage, "
    "archived_version, promoted, already_promoted).",
)
@click.pass_obj
def promote(
    obj: AppContext,
    model: str,
    environment: str,
    version: str | None,
    confidence: float | None,
    note: str | None,
    offline: bool,
    branch: str | None,
    commit: bool,
    output_format: str,
) -> None:
    """Pin MODEL in an environment: edit or create its pin file, keeping comments and layout.

    The version must exist in the registry and be READY (unless --offline). The pull request
    that carries this change is the promotion; apply makes it so.
    """
    from reconciler.promotion.promote import promote as promote_pin

    result = promote_pin(
        obj.repository_root(),
        obj.registry,
        model,
        environment,
        version=version,
        confidence=confidence,
        branch=branch,
        commit=commit,
        note=note,
        offline=offline,
    )
    if output_format == "json":
        click.echo(json.dumps(result.record(), indent=2))
        return
    if result.offline:
        why = "offline" if offline else "another registry"
        print_line(
            f"{why}: not checked that {model} v{result.new_version} exists in the registry "
            "(plan will check it)"
        )
    if result.already_promoted:
        print_line(
            f"{model} v{result.new_version} is already pinned in {environment} ({result.file})"
        )
        return
    was = f" (was v{result.previous_version})" if result.previous_version else " (new pin)"
    print_line(
        f"pinned {model} v{result.new_version} in {environment}{was}: {result.file}; "
        f"version from {result.source}"
    )
    for dropped in result.dropped:
        print_line(f"dropped {dropped}")
    if result.commit:
        on = f" on branch {result.branch}" if result.branch else ""
        click.echo(f"committed {result.commit[:12]}{on}")
