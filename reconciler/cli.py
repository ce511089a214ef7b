"""The command line: the only module that prints. Commands parse, call `api`, render, exit.

Exit codes (errors.py, the README's table): 0 success (in sync), 1 expected failure (bad input,
registry error, failed apply), 2 changes pending (`plan --detailed-exitcode`) and nothing else,
3 a bug, 4 out of order, 64 a usage error (unknown option, bad choice), 130 interrupted (SIGINT),
143 terminated (SIGTERM), 129 hung up (SIGHUP).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import traceback as traceback_module
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler import api, report
from reconciler import verify as verify_report
from reconciler.apply.executor import ApplyReport, StepResult
from reconciler.apply.lease import DEFAULT_SETTLE, DEFAULT_TTL, DEFAULT_WAIT
from reconciler.apply.options import DEFAULT_PARALLELISM, ApplyOptions, Interrupt
from reconciler.errors import (
    EXIT_BUG,
    EXIT_CHANGES_PENDING,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_SIGHUP,
    EXIT_SIGTERM,
    EXIT_USAGE,
    InvalidInput,
    Problem,
    ReconcilerError,
)
from reconciler.redact import ScrubbingFilter, scrub
from reconciler.registry.base import Registry
from reconciler.verify import Outcome

RegistryFactory = Callable[[str | None], Registry]


def _mlflow_registry(tracking_uri: str | None) -> Registry:
    from reconciler.registry.mlflow_registry import MlflowRegistry, check_tracking_uri

    uri, note = check_tracking_uri(tracking_uri)
    if note:
        click.echo(f"note: {scrub(note)}", err=True)
    return MlflowRegistry(uri)


@dataclass
class AppContext:
    """What every command needs. Tests pass one with a fake registry via `CliRunner(obj=...)`."""

    registry_factory: RegistryFactory = _mlflow_registry
    root: Path | None = None
    tracking_uri: str | None = None
    traceback: bool = False
    # Lease timing (see apply/lease.py): tests shorten them; users keep the defaults.
    lease_settle: float = DEFAULT_SETTLE
    lease_ttl: float = DEFAULT_TTL

    def registry(self) -> Registry:
        return self.registry_factory(self.tracking_uri)

    def repository_root(self) -> Path:
        if self.root is None:
            from reconciler.gitrepo import repository_root

            self.root = repository_root(Path.cwd())
        return self.root


_INVOKED = "reconciler.invoked"  # ctx.meta key: the subcommand and its raw arguments


class _Group(click.Group):
    """The one exit path. Expected failures: one line per problem on stderr and their exit code;
    bugs: exit 3; usage errors: exit 64. A command whose `output_format` is `json` also gets the
    failure as one JSON document on stdout, `github` gets workflow-command annotations; this
    works for every command from its `output_format` parameter, new ones included."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        # `reconciler plan --debug` as well as `reconciler --debug plan`.
        cmd.params.extend(_late_global_options())
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
        except InvalidInput as error:
            for problem in error.problems:
                _error(str(problem))
            if os.environ.get("GITHUB_ACTIONS") == "true" and _output_format(ctx) != "github":
                # On stderr: stdout is the command's document (plan.md, JSON); GitHub reads
                # workflow commands from both and marks each problem on its diff line.
                for problem in error.problems:
                    click.echo(github_annotation(problem), err=True)
            summary = (
                f"{len(error.problems)} problem(s) found; nothing was changed in the registry."
            )
            _error(summary)
            _document(ctx, summary, error.exit_code, error.problems)
            ctx.exit(error.exit_code)
        except ReconcilerError as error:
            _error(str(error))
            _document(ctx, str(error), error.exit_code)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            _error("interrupted")
            _document(ctx, "interrupted", EXIT_INTERRUPTED)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`| head`): nothing more can be shown. Not a bug.
            _drop_stdout()
            _error("standard output was closed before the command finished printing")
            ctx.exit(1)
        except Exception as error:
            obj = ctx.find_object(AppContext)
            if obj is not None and obj.traceback:
                click.echo(scrub(traceback_module.format_exc()), err=True)
            message = (
                f"internal error (a bug, please report it): {type(error).__name__}: "
                f"{scrub(str(error))}; rerun with --traceback for details"
            )
            _error(message)
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
            click.echo(f"::error title=reconciler::{_workflow_data(scrub(message))}")


def error_json(message: str, exit_code: int, problems: Sequence[Problem] = ()) -> str:
    """`{"error": {"message", "exit_code", "problems": [{"file", "line", "field", "message"}]}}`,
    `problems` only when there are any."""
    error: dict[str, Any] = {"message": scrub(message), "exit_code": exit_code}
    if problems:
        error["problems"] = [
            {"file": p.file, "line": p.line, "field": p.field, "message": scrub(p.message)}
            for p in problems
        ]
    return json.dumps({"error": error}, indent=2, ensure_ascii=False)


def github_annotation(problem: Problem) -> str:
    """`::error file=…,line=…,title=…::message`, escaped as GitHub's workflow commands want."""

    def prop(text: str) -> str:
        return _workflow_data(text).replace(":", "%3A").replace(",", "%2C")

    where = f"file={prop(problem.file)}"
    if problem.line is not None:
        where += f",line={problem.line}"
    title = f"reconciler: {problem.field}" if problem.field else "reconciler"
    return f"::error {where},title={prop(title)}::{_workflow_data(scrub(problem.message))}"


def _workflow_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


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
        _enable_debug_log(ctx)


def _late_global_options() -> list[click.Option]:
    """`--debug` and `--traceback` again on every command, so they work after its name."""

    def set_traceback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        obj = ctx.find_object(AppContext)
        if value and obj is not None and not ctx.resilient_parsing:
            obj.traceback = True

    def set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            _enable_debug_log(ctx.find_root())

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


def _enable_debug_log(root: click.Context) -> None:
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
    # The registry adapter sees the root logger at DEBUG and routes MLflow's loggers here.


@cli.command()
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
    from reconciler.promotion_order import promotion_order

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
    "--allow-dirty",
    is_flag=True,
    help="Apply even if environments/ differs from the commit checked out (a local "
    "experiment); the audit records then say dirty.",
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
@click.option(
    "--verify",
    "verify_serving",
    is_flag=True,
    help="After a successful apply, wait until the serving endpoints of the pins it changed "
    "serve them (as `reconciler verify`); exit 1 if they do not (the registry changes stand).",
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
    allow_dirty: bool,
    lease_wait: float,
    verify_serving: bool,
    parallelism: int,
) -> None:
    """Make the registry match the pins. Validates and plans everything before any write.

    No two applies write one model at once (a lease on each model it writes); after writing a
    model, it re-reads it and repairs what another writer left (an extra version in a stage, a
    moved alias), then records its applied commit, ownership and audit. Results stream as they
    land; SIGINT/SIGTERM/SIGHUP finish the models in flight and exit 130/143/129 with the report.
    """
    from reconciler.audit import pull_request_from_message
    from reconciler.gitrepo import head_commit, head_message

    root = obj.repository_root()
    printing = threading.Lock()  # results arrive from the worker threads

    def stream(result: StepResult) -> None:
        if output_format == "text":
            with printing:
                try:
                    click.echo(report.result_line(result))
                except BrokenPipeError:
                    # The reader went away (`apply | head -1`): the apply goes on, every model
                    # written is recorded and released; only the printing stops.
                    _drop_stdout()

    interrupt = Interrupt()
    options = ApplyOptions(
        lease_wait=lease_wait,
        lease_settle=obj.lease_settle,
        lease_ttl=obj.lease_ttl,
        commit=head_commit(root),
        expect_checksum=expect_plan,
        force=force,
        allow_dirty=allow_dirty,
        prune=prune,
        pull_request=pull_request_from_message(head_message(root)),
        on_event=lambda message: click.echo(f"note: {scrub(message)}", err=True),
        on_result=stream,
        parallelism=parallelism,
        interrupt=interrupt,
    )
    registry = obj.registry()
    try:
        with _stopping_on_signals(interrupt):
            result = api.apply(root, registry, environments, models, options)
    finally:
        # Once per apply, also when it failed: e.g. that the server cannot archive atomically.
        for notice in registry.notices:
            click.echo(f"note: {scrub(notice)}", err=True)
    if output_format == "json":
        click.echo(report.apply_json(result))
    else:
        click.echo(report.apply_text(result, streamed=True))
    from reconciler import notify

    # After the report: a slow or failing channel never holds back or changes the outcome.
    for line in notify.send(notify.messages(result)):
        click.echo(f"note: {line}", err=True)
    if result.interrupted:
        code = _SIGNAL_EXITS.get(result.interrupted, EXIT_INTERRUPTED)
        _error(
            f"apply interrupted by {result.interrupted}: the models in flight were finished and "
            "recorded, the rest not attempted; run `reconciler plan` to see what remains"
        )
        sys.exit(code)
    if result.failed:
        _error("apply stopped at a failed change; run `reconciler plan` to see what remains")
        sys.exit(EXIT_ERROR)
    if verify_serving:
        _verify_applied(root, result, output_format)


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
    from reconciler.apply.lease import unlock as unlock_leases

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
    """SIGINT (Ctrl-C), SIGTERM (CI cancelling the job) and SIGHUP (an ssh session or terminal
    that goes away) during apply: the first asks the apply to stop at a step boundary (finish the
    models in flight, record them, release the leases, report); a second exits at once. Only in
    the main thread (signals are delivered there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if interrupt.event.is_set():
            _error(f"{name} again: exiting at once (an unfinished lease: `reconciler unlock`)")
            os._exit(_SIGNAL_EXITS.get(name, EXIT_INTERRUPTED))
        interrupt.set(name)
        _error(f"{name}: finishing the models in flight, then stopping (again to exit at once)")

    previous = {sig: signal.signal(sig, handle) for sig in _STOPPING_SIGNALS}
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
        note=note,
        offline=offline,
    )
    if output_format == "json":
        click.echo(json.dumps(result.record(), indent=2))
        return
    if offline:
        click.echo(
            f"offline: not checked that {model} v{result.new_version} exists in the registry "
            "(plan will check it)"
        )
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
    for dropped in result.dropped:
        click.echo(f"dropped {dropped}")
    if result.commit:
        on = f" on branch {result.branch}" if result.branch else ""
        click.echo(f"committed {result.commit[:12]}{on}")


@cli.command(name="import")
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
    from reconciler.import_report import import_json, import_text

    registry = obj.registry()
    uri = str(getattr(registry, "display_uri", None) or obj.tracking_uri or "the default registry")
    result = api.import_pins(
        obj.repository_root(), registry, uri, environments, models, overwrite=overwrite
    )
    click.echo(import_json(result) if output_format == "json" else import_text(result))


STATUS_FORMATS = {
    "text": report.status_text,
    "markdown": report.status_markdown,
    "json": report.status_json,
}


@cli.command()
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
    rows = api.status(obj.repository_root(), obj.registry(), environments, models)
    click.echo(STATUS_FORMATS[output_format](rows))
    if detailed_exitcode and not all(row.in_sync for row in rows):
        sys.exit(EXIT_CHANGES_PENDING)


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
    marked applied when the registry's audit records name the commit (or a later commit that
    still pins the version). Needs full history: a shallow clone is refused."""
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


@cli.command()
@ENV_OPTION
@MODEL_OPTION
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Wait at most this long for each endpoint (default: its `serving: timeout`, else 5m).",
)
@format_option(
    ["text", "json"],
    "json: {ok, endpoints: [{environment, model, url, expected_version, served_version, ok, "
    "error, seconds, polls}]}.",
)
@click.pass_obj
def verify(
    obj: AppContext,
    environments: Sequence[str],
    models: Sequence[str],
    timeout: float | None,
    output_format: str,
) -> None:
    """Check that serving runs what is pinned: poll the `serving:` endpoint of every pin in
    scope (concurrently) until it answers the pinned version or the timeout passes.

    Offline from the registry. Exit 0 when every endpoint serves its pin, 1 otherwise.
    """
    outcomes = api.verify(obj.repository_root(), environments, models, timeout)
    click.echo(
        verify_report.as_json(outcomes) if output_format == "json" else verify_report.text(outcomes)
    )
    if not _notify_verification(outcomes):
        sys.exit(EXIT_ERROR)


def _verify_applied(root: Path, result: ApplyReport, output_format: str) -> None:
    """`apply --verify`: after the apply report, verify the pins it changed. With --format json
    stdout stays the apply's one JSON document, and this report goes to stderr."""
    outcomes = api.verify(root, only=api.applied_pins(result))
    click.echo(verify_report.text(outcomes), err=output_format == "json")
    if not _notify_verification(outcomes):
        _error("serving does not follow the pins; the registry changes stand (see above)")
        sys.exit(EXIT_ERROR)


def _notify_verification(outcomes: list[Outcome]) -> bool:
    """Send a message for each endpoint that fails; True when all serve their pins."""
    from reconciler import notify

    for line in notify.send(notify.verify_messages(outcomes)):
        click.echo(f"note: {line}", err=True)
    return verify_report.all_ok(outcomes)


_STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_SIGNAL_EXITS = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_SIGTERM, "SIGHUP": EXIT_SIGHUP}


def _drop_stdout() -> None:
    """Send the rest of stdout to /dev/null: the reader is gone, and a flush at exit would
    raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        pass
    finally:
        os.close(devnull)


def main() -> None:
    """Console entry point (`reconciler`)."""
    cli(prog_name="reconciler")
