"""`--debug` and `--traceback`, before or after the command's name."""

from __future__ import annotations

import logging
import sys

import click

from reconciler.cli.context import AppContext
from reconciler.redact import ScrubbingFilter


def late_global_options() -> list[click.Option]:
    """`--debug` and `--traceback` again on every command, so they work after its name."""

    def set_traceback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        obj = ctx.find_object(AppContext)
        if value and obj is not None and not ctx.resilient_parsing:
            obj.traceback = True

    def set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            enable_debug_log(ctx.find_root())

    return [
        click.Option(
            ["--traceback"],
            is_flag=True,
            hidden=True,
            expose_value=False,
            callback=set_traceback,
            help="Show tracebacks of internal errors.",
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            callback=set_debug,
            help="As `reconciler --debug`: log every registry request to stderr, scrubbed.",
        ),
    ]


_DEBUG_ON = "reconciler.debug"  # ctx.meta key: the debug handler is installed


def enable_debug_log(root: click.Context) -> None:
    """Log to stderr through a scrubbing filter until the command ends; once, however often
    `--debug` is given."""
    if root.meta.get(_DEBUG_ON):
        return
    root.meta[_DEBUG_ON] = True
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    root_logger = logging.getLogger()
    previous_level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG)
    # GitPython's DEBUG is its own subprocess bookkeeping (it probes `git version` twice and logs
    # the platform at each open): noise that reads as every line printed twice. Its warnings stay.
    git_logger = logging.getLogger("git")
    previous_git_level = git_logger.level
    git_logger.setLevel(logging.INFO)

    def undo() -> None:
        root_logger.removeHandler(handler)
        root_logger.setLevel(previous_level)
        git_logger.setLevel(previous_git_level)
        root.meta.pop(_DEBUG_ON, None)

    root.call_on_close(undo)
