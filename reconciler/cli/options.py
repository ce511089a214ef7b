"""Options several commands share: --env, --model, --format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

ENV_OPTION = click.option(
    "--env",
    "environments",
    multiple=True,
    metavar="ENV",
    help="Only this environment (repeatable).",
)


MODEL_OPTION = click.option(
    "--model", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable)."
)


def format_option(choices: list[str], help_text: str = "Output format.") -> Callable[[Any], Any]:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(choices),
        default="text",
        show_default=True,
        help=help_text,
    )
