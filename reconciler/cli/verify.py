"""`reconciler verify`, and the verification `apply --verify` runs after an apply."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import click

from reconciler import api
from reconciler.api.sites import Connect
from reconciler.apply.executor import ApplyReport
from reconciler.apply.options import Interrupt
from reconciler.cli.context import AppContext
from reconciler.cli.options import ENV_OPTION, MODEL_OPTION, format_option
from reconciler.cli.output import print_note
from reconciler.cli.signals import SIGNAL_EXITS, stopping_on_signals
from reconciler.errors import EXIT_INTERRUPTED, Reported
from reconciler.render import verify as render_verify
from reconciler.serving.verify import Outcome, all_ok


@click.command()
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
    "error, reload_error, seconds, polls, interrupted}]}.",
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
    SIGINT/SIGTERM/SIGHUP stop every poll, print the report so far and exit 130/143/129.
    """
    interrupt = Interrupt()
    with _stopping(interrupt):
        outcomes = api.verify(
            obj.repository_root(),
            environments,
            models,
            timeout,
            stop=interrupt.event,
            connect=obj.connect,
        )
    click.echo(
        render_verify.as_json(outcomes) if output_format == "json" else render_verify.text(outcomes)
    )
    _stop_if_interrupted(interrupt, "verify interrupted")
    if not _notify_verification(outcomes):
        raise Reported(None)  # the report says which endpoints fail


def verify_applied(
    root: Path, result: ApplyReport, output_format: str, connect: Connect | None = None
) -> None:
    """`apply --verify`: after the apply report, verify the pins it changed. With --format json
    stdout stays the apply's one JSON document, and this report goes to stderr."""
    interrupt = Interrupt()
    with _stopping(interrupt):
        outcomes = api.verify(
            root, only=api.applied_pins(result), stop=interrupt.event, connect=connect
        )
    click.echo(render_verify.text(outcomes), err=output_format == "json")
    _stop_if_interrupted(interrupt, "the registry changes stand; the verification interrupted")
    if not _notify_verification(outcomes):
        raise Reported("serving does not follow the pins; the registry changes stand (see above)")


def _stopping(interrupt: Interrupt) -> AbstractContextManager[None]:
    return stopping_on_signals(
        interrupt, "stopping every poll; the report follows with what each endpoint answered", ""
    )


def _stop_if_interrupted(interrupt: Interrupt, what: str) -> None:
    """After the report: an interrupted verify is no verdict, nothing is notified."""
    if interrupt.signal:
        raise Reported(
            f"{what} by {interrupt.signal}: the report shows what each endpoint answered until "
            "then",
            SIGNAL_EXITS.get(interrupt.signal, EXIT_INTERRUPTED),
        )


def _notify_verification(outcomes: list[Outcome]) -> bool:
    """Send a message for each endpoint that fails; True when all serve their pins."""
    from reconciler.serving import notify

    for line in notify.send(notify.verify_messages(outcomes)):
        print_note(line)
    return all_ok(outcomes)
