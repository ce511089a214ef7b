"""The few lines every command writes the same way: errors and notes on stderr, one line each
(whatever a model name or a server's message holds: render/escape.py), and a closed stdout."""

from __future__ import annotations

import os
import sys

import click

from reconciler.redact import scrub
from reconciler.render.escape import text


def print_error(message: str) -> None:
    click.echo(f"error: {text(scrub(message))}", err=True)


def print_note(message: str) -> None:
    click.echo(f"note: {text(scrub(message))}", err=True)


def print_line(line: str) -> None:
    """One line of a command's own report on stdout (names in it shown escaped)."""
    click.echo(text(line))


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
