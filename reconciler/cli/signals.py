"""SIGINT, SIGTERM and SIGHUP during apply (stop at a step boundary) and verify (stop every
poll and report): the first signal asks the command to stop, a second exits at once."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from reconciler.apply.options import Interrupt
from reconciler.cli.output import print_error
from reconciler.errors import EXIT_INTERRUPTED, EXIT_SIGHUP, EXIT_SIGTERM

STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


SIGNAL_EXITS = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_SIGTERM, "SIGHUP": EXIT_SIGHUP}


APPLY_STOPPING = "finishing the models in flight, then stopping"
APPLY_LEFT_BEHIND = " (an unfinished lease: `reconciler unlock`)"


@contextmanager
def stopping_on_signals(
    interrupt: Interrupt, doing: str = APPLY_STOPPING, left_behind: str = APPLY_LEFT_BEHIND
) -> Iterator[None]:
    """SIGINT (Ctrl-C), SIGTERM (CI cancelling the job) and SIGHUP (an ssh session or terminal
    that goes away): the first sets `interrupt` and says what the command does now (`doing`):
    apply stops at a step boundary (finishes the models in flight, records them, releases the
    leases, reports), verify stops every poll and reports; a second exits at once. Only in the
    main thread (signals are delivered there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if interrupt.event.is_set():
            print_error(f"{name} again: exiting at once{left_behind}")
            os._exit(SIGNAL_EXITS.get(name, EXIT_INTERRUPTED))
        interrupt.set(name)
        print_error(f"{name}: {doing} (again to exit at once)")

    previous = {sig: signal.signal(sig, handle) for sig in STOPPING_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
