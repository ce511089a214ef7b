"""A model's lease record as a value: who holds it, until when, and whether its holder is gone;
and the refusal to lease a model whose state tag cannot be read (its lease cannot be judged)."""

from __future__ import annotations

import functools
import json
import math
import os
import socket
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import StateUnreadable
from reconciler.records.bookkeeping import state_of
from reconciler.records.state_shape import MAX_PID
from reconciler.registry.values import ActualState, RegisteredModel


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    commit: str | None
    acquired: float
    expires: float
    host: str | None = None  # where the holder runs, with its pid: a dead holder frees it at once
    pid: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> LeaseRecord | None:
        """The record in a tag value; None for a missing or unreadable one (treated as free)."""
        if not text:
            return None
        try:
            return cls.from_dict(json.loads(text))
        except ValueError:
            return None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LeaseRecord | None:
        if not data:
            return None
        try:
            record = cls(
                holder=str(data["holder"]),
                commit=None if data.get("commit") is None else str(data["commit"]),
                acquired=float(data["acquired"]),
                expires=float(data["expires"]),
                host=None if data.get("host") is None else str(data["host"]),
                pid=None if data.get("pid") is None else int(data["pid"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            return None
        # Only the legacy tag comes here unchecked (state_shape checks the state tag's lease).
        if not (math.isfinite(record.acquired) and math.isfinite(record.expires)):
            return None
        return record

    def holder_gone(self) -> bool:
        """The holder ran where its pid means what it means here, and that process is gone."""
        if self.host != this_host() or self.pid is None or not 0 < self.pid <= MAX_PID:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists, owned by someone else
            return False
        return False

    def free(self, now: float) -> bool:
        return self.expires <= now or self.holder_gone()

    def describe(self, now: float) -> str:
        commit = f", commit {self.commit[:12]}" if self.commit else ""
        return (
            f"{self.holder}{commit}, taken {max(0, round(now - self.acquired))} s ago, "
            f"expires in {max(0, round(self.expires - now))} s"
        )


@functools.cache
def this_host() -> str:
    """Where a pid names the same process as here: the hostname, the kernel's boot (a reboot
    reuses pids) and the PID namespace (a container with host networking shares the hostname and
    not the pids). A record from anywhere else, or an older one naming the hostname alone, is
    freed only by expiry."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
        parts.append(os.readlink("/proc/self/ns/pid"))  # e.g. pid:[4026531836]
    except OSError:
        parts.append("no-namespace-id")  # not Linux: never matches a record from elsewhere
    return " ".join(parts)


def lease_of(model: RegisteredModel | None) -> LeaseRecord | None:
    """The model's lease as read, or None when free or released by its apply's audit records."""
    return LeaseRecord.from_dict(state_of(model).lease)


def check_readable(actual: ActualState, models: Collection[str]) -> None:
    """Refuse (StateUnreadable) if any of `models` has a state tag this version cannot read: its
    lease and fence cannot be judged, and writing over it would drop what it says."""
    refusals = [
        refusal
        for model in sorted(models)
        if (refusal := state_of(_model(actual, model)).refusal(model)) is not None
    ]
    if refusals:
        more = len(refusals) - 1
        also = f" ({more} more model(s) likewise; `reconciler plan` lists them)" if more else ""
        raise StateUnreadable(refusals[0] + also)


def _model(actual: ActualState | None, model: str) -> RegisteredModel | None:
    return actual.models.get(model) if actual is not None else None
