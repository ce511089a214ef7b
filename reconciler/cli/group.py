"""The one exit path: every command runs inside `ReconcilerGroup.invoke`, which turns expected
failures, bugs, usage errors, interrupts and a closed stdout into their message and exit code
(errors.py, the README's table), and into a JSON document or annotations for machines."""

from __future__ import annotations

import os
import traceback as traceback_module
from collections.abc import Sequence
from typing import Any

import click

from reconciler.cli.context import AppContext
from reconciler.cli.debug import late_global_options
from reconciler.cli.output import drop_stdout, print_error
from reconciler.errors import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    InvalidInput,
    Problem,
    ReconcilerError,
    Reported,
)
from reconciler.redact import scrub
from reconciler.render.errors import error_json, github_annotation, github_error

_INVOKED = "reconciler.invoked"  # ctx.meta key: the subcommand and its raw arguments


class ReconcilerGroup(click.Group):
    """The one exit path. Expected failures: one line per problem on stderr and their exit code;
    bugs: exit 3; usage errors: exit 64. A command whose `output_format` is `json` also gets the
    failure as one JSON document on stdout, `github` gets workflow-command annotations; this
    works for every command from its `output_format` parameter, new ones included."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        # `reconciler plan --debug` as well as `reconciler --debug plan`.
        cmd.params.extend(late_global_options())
        super().add_command(cmd, name)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:  # an unknown global option, before any command
            error.exit_code = EXIT_USAGE  # type: ignore[misc]  # click reads the instance
            raise

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        ctx.meta[_INVOKED] = (name, cmd, list(rest))
        return name, cmd, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            error.exit_code = EXIT_USAGE  # type: ignore[misc]  # click reads the instance
            _document(ctx, error.format_message(), EXIT_USAGE)
            raise
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Reported as error:
            if error.message:
                print_error(error.message)
            ctx.exit(error.exit_code)
        except InvalidInput as error:
            for problem in error.problems:
                print_error(str(problem))
            if os.environ.get("GITHUB_ACTIONS") == "true" and _output_format(ctx) != "github":
                # On stderr: stdout is the command's document (plan.md, JSON); GitHub reads
                # workflow commands from both and marks each problem on its diff line.
                for problem in error.problems:
                    click.echo(github_annotation(problem), err=True)
            summary = f"{len(error.problems)} problem(s) found; {error.consequence}"
            print_error(summary)
            _document(ctx, summary, error.exit_code, error.problems)
            ctx.exit(error.exit_code)
        except ReconcilerError as error:
            print_error(str(error))
            _document(ctx, str(error), error.exit_code)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            print_error("interrupted")
            _document(ctx, "interrupted", EXIT_INTERRUPTED)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`| head`): nothing more can be shown. Not a bug.
            drop_stdout()
            print_error("standard output was closed before the command finished printing")
            ctx.exit(1)
        except Exception as error:
            obj = ctx.find_object(AppContext)
            if obj is not None and obj.traceback:
                click.echo(scrub(traceback_module.format_exc()), err=True)
            message = (
                f"internal error (a bug, please report it): {type(error).__name__}: "
                f"{scrub(str(error))}; rerun with --traceback for details"
            )
            print_error(message)
            _document(ctx, message, EXIT_BUG)
            ctx.exit(EXIT_BUG)


def _output_format(ctx: click.Context) -> str | None:
    """The invoked command's `--format`, read again from its arguments without failing (the
    error may be in those very arguments: a bad choice reads as None)."""
    invoked = ctx.meta.get(_INVOKED)
    if invoked is None:
        return None
    name, cmd, args = invoked
    if cmd is None or not any(p.name == "output_format" for p in cmd.params):
        return None
    try:
        sub = cmd.make_context(name, list(args), parent=ctx, resilient_parsing=True)
    except (click.ClickException, click.exceptions.Exit):
        return None
    value = sub.params.get("output_format")
    return value if isinstance(value, str) else None


def _document(
    ctx: click.Context, message: str, exit_code: int, problems: Sequence[Problem] = ()
) -> None:
    """A failure for machines, on stdout: the JSON error document or GitHub annotations."""
    output_format = _output_format(ctx)
    if output_format == "json":
        click.echo(error_json(message, exit_code, problems))
    elif output_format == "github":
        for problem in problems:
            click.echo(github_annotation(problem))
        if not problems:
            click.echo(github_error(message))
