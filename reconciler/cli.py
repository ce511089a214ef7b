"""The command line: the only module that prints. Commands parse, call `api`, render, exit.

Exit codes: 0 success (in sync), 1 expected failure (bad input, registry error, failed apply),
2 changes pending (`plan --detailed-exitcode`), 3 a bug, 4 out of order, 130 interrupted
(SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import traceback as traceback_module
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler import api, report
from reconciler.errors import (
    EXIT_BUG,
    EXIT_CHANGES_PENDING,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_SIGTERM,
    InvalidInput,
    Problem,
    ReconcilerError,
)
from reconciler.executor import StepResult
from reconciler.lease import DEFAULT_SETTLE, DEFAULT_TTL, DEFAULT_WAIT
from reconciler.options import DEFAULT_PARALLELISM, ApplyOptions, Interrupt
from reconciler.redact import ScrubbingFilter, scrub
from reconciler.registry.base import Registry

RegistryFactory = Callable[[str | None], Registry]


def _mlflow_registry(tracking_uri: str | None) -> Registry:
    from reconciler.registry.mlflow_registry import MlflowRegistry

    return MlflowRegistry(tracking_uri)


@dataclass
class AppContext:
    """What every command needs. Tests pass one with a fake registry via `CliRunner(obj=...)`."""

    registry_factory: RegistryFactory = _mlflow_registry
    root: Path | None = None
    tracking_uri: str | None = None
    traceback: bool = False
    # Lease timing (see lease.py): tests shorten them; users keep the defaults.
    lease_settle: float = DEFAULT_SETTLE
    lease_ttl: float = DEFAULT_TTL

    def registry(self) -> Registry:
        return self.registry_factory(self.tracking_uri)

    def repository_root(self) -> Path:
        if self.root is None:
            from reconciler.gitrepo import repository_root

            self.root = repository_root(Path.cwd())
        return self.root


class _Group(click.Group):
    """Turns expected failures into one line on stderr and an exit code; bugs into exit 3."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except InvalidInput as error:
            for problem in error.problems:
                _error(str(problem))
            if os.environ.get("GITHUB_ACTIONS") == "true":
                # Workflow commands on stdout: GitHub marks each problem on its diff line.
                for problem in error.problems:
                    click.echo(github_annotation(problem))
            _error(f"{len(error.problems)} problem(s) found; nothing was changed in the registry.")
            ctx.exit(error.exit_code)
        except ReconcilerError as error:
            _error(str(error))
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            _error("interrupted")
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as error:
            obj = ctx.find_object(AppContext)
            if obj is not None and obj.traceback:
                click.echo(scrub(traceback_module.format_exc()), err=True)
            _error(
                f"internal error (a bug, please report it): {type(error).__name__}: "
                f"{scrub(str(error))}; rerun with --traceback for details"
            )
            ctx.exit(EXIT_BUG)


def github_annotation(problem: Problem) -> str:
    """`::error file=…,line=…,title=…::message`, escaped as GitHub's workflow commands want."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    where = f"file={prop(problem.file)}"
    if problem.line is not None:
        where += f",line={problem.line}"
    title = f"reconciler: {problem.field}" if problem.field else "reconciler"
    return f"::error {where},title={prop(title)}::{data(scrub(problem.message))}"


def _error(message: str) -> None:
    click.echo(f"error: {scrub(message)}", err=True)


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


@click.group(
    name="reconciler", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    metavar="URI",
    help="MLflow tracking/registry URI. Default: $MLFLOW_TRACKING_URI, else MLflow's own "
    "default (a local sqlite:///mlflow.db).",
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
@click.version_option(package_name="mlflow-reconciler", message="%(prog)s %(version)s")
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
        ctx.call_on_close(_enable_debug_log())


def _enable_debug_log() -> Callable[[], None]:
    """Log everything to stderr through a scrubbing filter; returns the undo."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    root_logger = logging.getLogger()
    previous_level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG)

    def undo() -> None:
        root_logger.removeHandler(handler)
        root_logger.setLevel(previous_level)

    return undo
    # The registry adapter sees the root logger at DEBUG and routes MLflow's loggers here.


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_obj
def validate(obj: AppContext, paths: Sequence[Path]) -> None:
    """Check pins and environment settings offline (no registry needed).

    With PATHS, check those files or folders; else everything under environments/.
    """
    desired = api.validate(obj.repository_root(), paths)
    environments = {pin.environment for pin in desired.pins} | set(desired.environments)
    click.echo(f"ok: {len(desired.pins)} pin(s) in {len(environments)} environment(s) are valid")


FORMATS = {"text": report.plan_text, "markdown": report.plan_markdown, "json": report.plan_json}


@cli.command()
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
    from reconciler.review import ui_base

    result, reviews = api.make_plan(
        obj.repository_root(),
        obj.registry(),
        environments,
        models,
        prune=prune,
        ui_base=ui_base(obj.tracking_uri),
        with_reviews=output_format == "markdown",
    )
    if output_format == "markdown":
        click.echo(report.plan_markdown(result, reviews))
    else:
        click.echo(FORMATS[output_format](result))
    if detailed_exitcode and result.has_changes:
        sys.exit(EXIT_CHANGES_PENDING)


@cli.command()
@ENV_OPTION
@MODEL_OPTION
@format_option(
    ["text", "json"],
    "json: one record per pin (model_name, environment, new_version, new_stage, "
    "archived_version, promoted, already_promoted).",
)
@click.option(
    "--expect-plan",
    metavar="CHECKSUM",
    help="Apply only if the plan is still the one with this checksum (from `plan`): what was "
    "reviewed is what is applied.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Retire models whose pin files were removed (archive their version in the "
    "environment's stage, remove its alias). Only models reconciler applied there; never "
    "deletes versions.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Apply even if the commit does not descend from the one last applied (exit 4 "
    "without), or if pruning would empty an environment or exceed its max_retire.",
)
@click.option(
    "--lease-wait",
    type=click.FloatRange(min=0),
    default=DEFAULT_WAIT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for another apply's lease on a model before giving up.",
)
@click.option(
    "--parallelism",
    type=click.IntRange(min=1, max=64),
    default=DEFAULT_PARALLELISM,
    show_default=True,
    metavar="N",
    help="Write up to N models at once (each model's steps stay in order); 1 = one by one.",
)
@click.pass_obj
def apply(
    obj: AppContext,
    environments: Sequence[str],
    models: Sequence[str],
    output_format: str,
    expect_plan: str | None,
    prune: bool,
    force: bool,
    lease_wait: float,
    parallelism: int,
) -> None:
    """Make the registry match the pins. Validates and plans everything before any write.

    One apply writes a model at a time (a lease on each model it writes); after writing a model,
    it re-reads it and repairs what another writer left (an extra version in a stage, a moved
    alias), then records its applied commit, ownership and audit. Results stream as they land;
    SIGINT/SIGTERM finish the models in flight and exit 130/143 with the report.
    """
    from reconciler.audit import pull_request_from_message
    from reconciler.gitrepo import head_commit, head_message

    root = obj.repository_root()
    printing = threading.Lock()  # results arrive from the worker threads

    def stream(result: StepResult) -> None:
        if output_format == "text":
            with printing:
                click.echo(report.result_line(result))

    interrupt = Interrupt()
    options = ApplyOptions(
        lease_wait=lease_wait,
        lease_settle=obj.lease_settle,
        lease_ttl=obj.lease_ttl,
        commit=head_commit(root),
        expect_checksum=expect_plan,
        force=force,
        prune=prune,
        pull_request=pull_request_from_message(head_message(root)),
        on_event=lambda message: click.echo(f"note: {scrub(message)}", err=True),
        on_result=stream,
        parallelism=parallelism,
        interrupt=interrupt,
    )
    with _stopping_on_signals(interrupt):
        result = api.apply(root, obj.registry(), environments, models, options)
    if output_format == "json":
        click.echo(report.apply_json(result))
    else:
        click.echo(report.apply_text(result, streamed=True))
    from reconciler import notify

    # After the report: a slow or failing channel never holds back or changes the outcome.
    for line in notify.send(notify.messages(result)):
        click.echo(f"note: {line}", err=True)
    if result.interrupted:
        code = EXIT_SIGTERM if result.interrupted == "SIGTERM" else EXIT_INTERRUPTED
        _error(
            f"apply interrupted by {result.interrupted}: the models in flight were finished and "
            "recorded, the rest not attempted; run `reconciler plan` to see what remains"
        )
        sys.exit(code)
    if result.failed:
        _error("apply stopped at a failed change; run `reconciler plan` to see what remains")
        sys.exit(EXIT_ERROR)


@cli.command()
@MODEL_OPTION
@click.option(
    "--force",
    is_flag=True,
    help="Remove every lease, also those of applies that look alive (only when you know they "
    "are not running).",
)
@format_option(["text", "json"])
@click.pass_obj
def unlock(obj: AppContext, models: Sequence[str], force: bool, output_format: str) -> None:
    """Remove model leases left by applies that died: expired ones and those whose process is
    gone on this host (Terraform's force-unlock). Says what it removed and what it kept."""
    from reconciler.lease import unlock as unlock_leases

    found = unlock_leases(obj.registry(), models, force)
    now = datetime.now(UTC).timestamp()
    if output_format == "json":
        items = [
            {"model": u.model, "removed": u.removed, "why": u.why, "holder": u.record.holder,
             "commit": u.record.commit, "expires": u.record.expires}
            for u in found
        ]  # fmt: skip
        click.echo(json.dumps(items, indent=2))
        return
    for item in found:
        verb = f"removed ({item.why})" if item.removed else f"kept ({item.why}; --force removes it)"
        click.echo(f"{item.model}: lease {verb}: {item.record.describe(now)}")
    removed = sum(1 for u in found if u.removed)
    click.echo(f"Unlock: {removed} removed, {len(found) - removed} kept.")


@contextmanager
def _stopping_on_signals(interrupt: Interrupt) -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM (CI cancelling the job) during apply: the first asks the apply
    to stop at a step boundary (finish the models in flight, record them, release the leases,
    report); a second exits at once. Only in the main thread (signals are delivered there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

    def handle(signum: int, _frame: object) -> None:
        name = names.get(signal.Signals(signum), "SIGINT")
        if interrupt.event.is_set():
            _error(f"{name} again: exiting at once (an unfinished lease: `reconciler unlock`)")
            os._exit(EXIT_SIGTERM if name == "SIGTERM" else EXIT_INTERRUPTED)
        interrupt.set(name)
        _error(f"{name}: finishing the models in flight, then stopping (again to exit at once)")

    previous = {sig: signal.signal(sig, handle) for sig in names}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command()
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
    branch: str | None,
    commit: bool,
    output_format: str,
) -> None:
    """Pin MODEL in an environment: edit or create its pin file, keeping comments and layout.

    The pull request that carries this change is the promotion; apply makes it so.
    """
    from reconciler.promotion import promote as promote_pin

    result = promote_pin(
        obj.repository_root(),
        obj.registry,
        model,
        environment,
        version=version,
        confidence=confidence,
        branch=branch,
        commit=commit,
    )
    if output_format == "json":
        click.echo(json.dumps(result.record(), indent=2))
        return
    if result.already_promoted:
        click.echo(
            f"{model} v{result.new_version} is already pinned in {environment} ({result.file})"
        )
        return
    was = f" (was v{result.previous_version})" if result.previous_version else " (new pin)"
    click.echo(
        f"pinned {model} v{result.new_version} in {environment}{was}: {result.file}; "
        f"version from {result.source}"
    )
    if result.commit:
        on = f" on branch {result.branch}" if result.branch else ""
        click.echo(f"committed {result.commit[:12]}{on}")


STATUS_FORMATS = {
    "text": report.status_text,
    "markdown": report.status_markdown,
    "json": report.status_json,
}


@cli.command()
@ENV_OPTION
@MODEL_OPTION
@format_option(sorted(STATUS_FORMATS))
@click.pass_obj
def status(
    obj: AppContext, environments: Sequence[str], models: Sequence[str], output_format: str
) -> None:
    """One table: environment x model, the pinned version, what the registry has, in sync or
    not, and the commit last applied there."""
    rows = api.status(obj.repository_root(), obj.registry(), environments, models)
    click.echo(STATUS_FORMATS[output_format](rows))


@cli.command()
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
    marked applied when the registry's audit records name the commit."""
    when = _parse_time(at) if at else None
    result = api.history(obj.repository_root(), obj.registry(), model, environments, when)
    click.echo(
        report.history_json(result) if output_format == "json" else report.history_text(result)
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


def main() -> None:
    """Console entry point (`reconciler`)."""
    cli(prog_name="reconciler")
