"""`reconciler history`: promotions and rollbacks of one model from git, checked against the
audit records on the registry's model versions. Pure apart from its inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler import audit
from reconciler.bookkeeping import audit_tag
from reconciler.gitrepo import PinChange
from reconciler.state import RegisteredModel


@dataclass(frozen=True)
class HistoryEntry:
    change: PinChange
    rollback: bool
    applied: bool  # the registry's audit records name this commit for this version and env


@dataclass(frozen=True)
class History:
    model: str
    entries: tuple[HistoryEntry, ...]  # newest first
    at: datetime | None = None
    pinned_at: tuple[tuple[str, PinChange | None], ...] = ()  # env → the change in force at `at`


def build(
    model: str,
    changes: Sequence[PinChange],
    registered: RegisteredModel | None,
    environments: Sequence[str] = (),
    at: datetime | None = None,
) -> History:
    wanted = [c for c in changes if not environments or c.environment in environments]
    entries = tuple(
        HistoryEntry(change, _is_rollback(change), _applied(change, registered))
        for change in reversed(wanted)
    )
    pinned_at: tuple[tuple[str, PinChange | None], ...] = ()
    if at is not None:
        names = sorted(set(environments) or {c.environment for c in changes})
        pinned_at = tuple((env, _in_force(wanted, env, at)) for env in names)
    return History(model, entries, at, pinned_at)


def _is_rollback(change: PinChange) -> bool:
    if change.is_revert:
        return True
    return (
        change.before is not None
        and change.after is not None
        and (int(change.after) < int(change.before))
    )


def _applied(change: PinChange, registered: RegisteredModel | None) -> bool:
    if registered is None or change.after is None:
        return False
    version = registered.versions.get(change.after)
    if version is None:
        return False
    records = audit.parse(version.tags.get(audit_tag(change.environment)))
    # A dirty apply (--allow-dirty) did not apply exactly this commit.
    return any(record.commit == change.commit and not record.dirty for record in records)


def _in_force(changes: Sequence[PinChange], environment: str, at: datetime) -> PinChange | None:
    found = None
    for change in changes:  # oldest first
        if change.environment == environment and change.date <= at:
            found = change
    return found
