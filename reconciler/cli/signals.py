"""SIGINT, SIGTERM and SIGHUP during apply: stop at a step boundary, then at once."""

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


@contextmanager
def stopping_on_signals(interrupt: Interrupt) -> Iterator[None]:
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
            print_error(f"{name} again: exiting at once (an unfinished lease: `reconciler unlock`)")
            os._exit(SIGNAL_EXITS.get(name, EXIT_INTERRUPTED))
        interrupt.set(name)
        print_error(
            f"{name}: finishing the models in flight, then stopping (again to exit at once)"
        )

    previous = {sig: signal.signal(sig, handle) for sig in STOPPING_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
