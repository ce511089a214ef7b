"""The command line: the only package that prints. Commands parse, call `api`, render, exit.

Exit codes (errors.py, the README's table): 0 success (in sync), 1 expected failure (bad input,
registry error, failed apply), 2 changes pending (`plan --detailed-exitcode`) and nothing else,
3 a bug, 4 out of order, 5 owned by another repository, 64 a usage error (unknown option, bad
choice), 130 interrupted (SIGINT), 143 terminated (SIGTERM), 129 hung up (SIGHUP).
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler import __version__
from reconciler.cli.apply import apply
from reconciler.cli.ci import ci
from reconciler.cli.context import AppContext
from reconciler.cli.debug import enable_debug_log
from reconciler.cli.group import ReconcilerGroup
from reconciler.cli.history import history
from reconciler.cli.importing import import_command
from reconciler.cli.init import init
from reconciler.cli.plan import plan
from reconciler.cli.promote import promote
from reconciler.cli.status import status
from reconciler.cli.unlock import unlock
from reconciler.cli.validate import validate
from reconciler.cli.verify import verify


@click.group(
    name="reconciler", cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    metavar="URI",
    help="MLflow tracking/registry URI. Default: $MLFLOW_TRACKING_URI, else MLflow's own "
    "default (a local sqlite:///mlflow.db), used only if that database exists already.",
)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Repository root holding environments/. Default: the git root of the current directory.",
)
@click.option("--traceback", is_flag=True, hidden=True, help="Show tracebacks of internal errors.")
@click.option(
    "--debug",
    is_flag=True,
    help="Log every registry request (MLflow, HTTP) to stderr; credentials are scrubbed.",
)
@click.version_option(version=__version__, message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context, tracking_uri: str | None, root: Path | None, traceback: bool, debug: bool
) -> None:
    """Keep the MLflow Model Registry in step with the pins in environments/.

    A pin, environments/<env>/<model>.yaml, says which version of a model serves in an
    environment. `plan` shows what differs from the registry; `apply` makes it so.
    """
    obj = ctx.find_object(AppContext)
    if obj is None:
        obj = ctx.ensure_object(AppContext)
    obj.tracking_uri = tracking_uri or obj.tracking_uri
    obj.root = root or obj.root
    obj.traceback = traceback
    if debug:
        enable_debug_log(ctx)


for command in (
    init,
    validate,
    plan,
    apply,
    unlock,
    promote,
    import_command,
    status,
    history,
    verify,
    ci,
):
    cli.add_command(command)


def main() -> None:
    """Console entry point (`reconciler`)."""
    cli(prog_name="reconciler")
