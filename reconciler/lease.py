"""One writer per registry: a lease kept as a tag on a well-known registered model.

MLflow has no compare-and-set, so taking the lease is write-then-confirm: read (free or expired),
write our record, wait `settle` seconds, read again, and hold it only if the record is still ours.
Two writers that both read "free" each write; the later write wins and the earlier writer sees the
other's record on its confirming read and backs off.

Residual risk (documented in the README): if a writer's read-to-write gap exceeds `settle` (a
request stalled for longer than that), both may believe they hold the lease. Applies then still
converge: every apply verifies and repairs what it touched (archives extras, resets aliases).
Clocks matter only for expiry: a lease is taken over `ttl` seconds after its last renewal, by the
taker's clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from reconciler.bookkeeping import LEASE_TAG
from reconciler.bookkeeping import STATE_MODEL as LEASE_MODEL
from reconciler.errors import ReconcilerError
from reconciler.registry.base import Registry

DEFAULT_TTL = 120.0
DEFAULT_WAIT = 60.0
DEFAULT_SETTLE = 1.0
POLL_SECONDS = 2.0


class LeaseHeld(ReconcilerError):
    """Another apply holds the registry lease and did not release it in time."""


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    commit: str | None
    acquired: float
    expires: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> LeaseRecord | None:
        """The record in a tag value; None for a missing or unreadable one (treated as free)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(
                holder=str(data["holder"]),
                commit=None if data.get("commit") is None else str(data["commit"]),
                acquired=float(data["acquired"]),
                expires=float(data["expires"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self, now: float) -> str:
        commit = f", commit {self.commit[:12]}" if self.commit else ""
        return (
            f"{self.holder}{commit}, taken {max(0, round(now - self.acquired))} s ago, "
            f"expires in {max(0, round(self.expires - now))} s"
        )


class Lease:
    """Use as a context manager around the writes of one apply."""

    def __init__(
        self,
        registry: Registry,
        holder: str,
        commit: str | None,
        *,
        ttl: float = DEFAULT_TTL,
        wait: float = DEFAULT_WAIT,
        settle: float = DEFAULT_SETTLE,
        on_wait: Callable[[str], None] = lambda _message: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._registry = registry
        self._holder = holder
        self._commit = commit
        self._ttl = ttl
        self._wait = wait
        self._settle = settle
        self._on_wait = on_wait
        self._clock = clock
        self._sleep = sleep
        self._expires = 0.0
        self._acquired: float | None = None
        self.held = False

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.release()
        except ReconcilerError as error:
            # Never hide the apply's own outcome behind a failed release; expiry frees it.
            self._on_wait(f"could not release the registry lease (it expires by itself): {error}")

    def acquire(self) -> None:
        deadline = self._clock() + self._wait
        announced = False
        while True:
            current = self._read()
            now = self._clock()
            if current is None or current.expires <= now or current.holder == self._holder:
                self._write(now)
                self._sleep(self._settle)
                confirmed = self._read()
                if confirmed is not None and confirmed.holder == self._holder:
                    self.held = True
                    return
                self._acquired = None  # lost the race: a later attempt starts afresh
                current = confirmed
                now = self._clock()
            if now >= deadline:
                held_by = current.describe(now) if current else "another apply"
                raise LeaseHeld(
                    f"another apply is changing the registry (lease held by {held_by}); "
                    f"gave up after waiting {round(self._wait)} s. Retry when it is done, or "
                    "wait for the lease to expire if that apply died."
                )
            if not announced and current is not None:
                self._on_wait(f"waiting for the registry lease held by {current.describe(now)}")
                announced = True
            self._sleep(min(POLL_SECONDS, max(0.0, deadline - now)))

    def renew_if_needed(self) -> None:
        """Called before each write: push the expiry out when half the lease has run."""
        now = self._clock()
        if self.held and self._expires - now < self._ttl / 2:
            self._write(now)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        current = self._read()
        # Only our own record is removed: after an expiry another apply may hold it now.
        if current is not None and current.holder == self._holder:
            self._registry.delete_model_tag(LEASE_MODEL, LEASE_TAG)

    def _read(self) -> LeaseRecord | None:
        return LeaseRecord.parse(self._registry.get_model_tag(LEASE_MODEL, LEASE_TAG))

    def _write(self, now: float) -> None:
        if self._acquired is None:
            self._acquired = now
        self._expires = now + self._ttl
        record = LeaseRecord(self._holder, self._commit, self._acquired, self._expires)
        self._registry.set_model_tag(LEASE_MODEL, LEASE_TAG, record.to_json(), create_model=True)
