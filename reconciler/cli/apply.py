"""`reconciler apply`."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import click

from reconciler import api
from reconciler.apply.executor import StepResult
from reconciler.apply.lease import DEFAULT_WAIT
from reconciler.apply.options import DEFAULT_PARALLELISM, ApplyOptions, Interrupt
from reconciler.cli.context import AppContext
from reconciler.cli.options import ENV_OPTION, MODEL_OPTION, format_option
from reconciler.cli.output import drop_stdout, print_note
from reconciler.cli.signals import SIGNAL_EXITS, stopping_on_signals
from reconciler.cli.verify import verify_applied
from reconciler.errors import EXIT_INTERRUPTED, Reported
from reconciler.planning.scope import Scope
from reconciler.render import apply as render_apply


@click.command()
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
    "without), or if pruning would empty an environment or exceed its max_retire. Never takes "
    "over a model another repository owns (--take-ownership does).",
)
@click.option(
    "--take-ownership",
    is_flag=True,
    help="Also change models another repository owns (exit 5 without), making this one their "
    "owner; their audit records say it was a takeover and from whom.",
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
    take_ownership: bool,
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
    from reconciler.gitrepo import head_commit, head_message, repository_name
    from reconciler.records.audit import pull_request_from_message

    root = obj.repository_root()
    printing = threading.Lock()  # results arrive from the worker threads

    def stream(result: StepResult) -> None:
        if output_format == "text":
            with printing:
                try:
                    click.echo(render_apply.result_line(result))
                except BrokenPipeError:
                    # The reader went away (`apply | head -1`): the apply goes on, every model
                    # written is recorded and released; only the printing stops.
                    drop_stdout()

    interrupt = Interrupt()
    options = ApplyOptions(
        lease_wait=lease_wait,
        lease_settle=obj.lease_settle,
        lease_ttl=obj.lease_ttl,
        commit=head_commit(root),
        expect_checksum=expect_plan,
        force=force,
        take_ownership=take_ownership,
        repository_name=repository_name(root),
        allow_dirty=allow_dirty,
        prune=prune,
        pull_request=pull_request_from_message(head_message(root)),
        on_event=print_note,
        on_result=stream,
        parallelism=parallelism,
        interrupt=interrupt,
    )
    try:
        with stopping_on_signals(interrupt):
            result = api.apply(root, obj.connect, Scope.of(environments, models, prune), options)
    finally:
        # Once per apply, also when it failed: e.g. that the server cannot archive atomically.
        for notice in obj.notices():
            print_note(notice)
    if output_format == "json":
        click.echo(render_apply.apply_json(result))
    else:
        click.echo(render_apply.apply_text(result, streamed=True))
    from reconciler.serving import notify

    # After the report: a slow or failing channel never holds back or changes the outcome.
    for line in notify.send(notify.messages(result)):
        print_note(line)
    if result.interrupted:
        raise Reported(
            f"apply interrupted by {result.interrupted}: the models in flight were finished and "
            "recorded, the rest not attempted; run `reconciler plan` to see what remains",
            SIGNAL_EXITS.get(result.interrupted, EXIT_INTERRUPTED),
        )
    if result.failed:
        raise Reported(
            "apply stopped at a failed change; run `reconciler plan` to see what remains"
        )
    if verify_serving:
        verify_applied(root, result, output_format, obj.connect)
