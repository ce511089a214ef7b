"""The options of one apply, with defaults that say who is applying."""

from __future__ import annotations

import getpass
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reconciler.apply.lease import DEFAULT_SETTLE, DEFAULT_TTL, DEFAULT_WAIT

if TYPE_CHECKING:
    from reconciler.apply.executor import StepResult


class Interrupt:
    """Set by the command line's signal handler: the apply finishes the models in flight, starts
    no new one, records what it applied, releases its leases and reports."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: str | None = None

    def set(self, signal_name: str) -> None:
        self.signal = signal_name
        self.event.set()


# A registry 20-100 ms away: latency, not the server, bounds writing one model at a time.
DEFAULT_PARALLELISM = 8


@dataclass
class ApplyOptions:
    lease_wait: float = DEFAULT_WAIT
    lease_ttl: float = DEFAULT_TTL
    lease_settle: float = DEFAULT_SETTLE
    holder: str = field(default_factory=lambda: default_holder())
    commit: str | None = None
    expect_checksum: str | None = None  # `apply --expect-plan`: only the reviewed plan
    prune: bool = False  # `apply --prune`: retire models whose pins were removed
    force: bool = False  # `apply --force`: skip the ordering and prune safety checks
    # `apply --take-ownership`: change models another repository owns (audited as a takeover).
    take_ownership: bool = False
    repository_name: str | None = None  # how the records name this repository (origin URL)
    allow_dirty: bool = False  # `apply --allow-dirty`: apply an uncommitted environments/
    dirty: bool = False  # set by apply: what it applies is not exactly HEAD (audit says so)
    pull_request: str | None = None  # for the audit records, from the merge commit's message
    workspace: str | None = None  # set by apply: the registry workspace (audit records say it)
    actor: str = field(default_factory=lambda: default_actor())
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    on_event: Callable[[str], None] = lambda _message: None
    # Each step's result as it finishes (the command line streams them); from worker threads.
    on_result: Callable[[StepResult], None] = lambda _result: None
    parallelism: int = DEFAULT_PARALLELISM  # models written at once; 1 = one after another
    interrupt: Interrupt | None = None


def default_actor() -> str:
    """Who is applying: the CI's actor (GitHub Actions) or the local login."""
    return os.environ.get("GITHUB_ACTOR") or _login()


def default_holder() -> str:
    """Who is applying, as the lease and the plan tag show it: actor@host pid N (unique id)."""
    return f"{default_actor()}@{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:8]})"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
