"""The few lines every command writes the same way: errors on stderr, a closed stdout."""

from __future__ import annotations

import os
import sys

import click

from reconciler.redact import scrub


def print_error(message: str) -> None:
    click.echo(f"error: {scrub(message)}", err=True)


def drop_stdout() -> None:
    """Send the rest of stdout to /dev/null: the reader is gone, and a flush at exit would
    raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        pass
    finally:
        os.close(devnull)
