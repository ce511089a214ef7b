"""`reconciler history`: promotions and rollbacks of one model from git, checked against the
audit records on the registry's model versions. Pure apart from its inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from reconciler.gitrepo import PinChange
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag
from reconciler.registry.lineage import Lineage as CopyLineage
from reconciler.registry.values import RegisteredModel


@dataclass(frozen=True)
class HistoryEntry:
    change: PinChange
    rollback: bool
    applied: (
        bool  # the registry's audit records name this commit (or a descendant pinning the same)
    )
    # The apply took the model over from another repository (`--take-ownership`): from whom.
    took_over_from: str | None = None
    # The version's own number in this environment's registry when the pin named another
    # registry's (`from:`) and the copy there was applied.
    copy: str | None = None


@dataclass(frozen=True)
class History:
    model: str
    entries: tuple[HistoryEntry, ...]  # newest first
    at: datetime | None = None
    pinned_at: tuple[tuple[str, PinChange | None], ...] = ()  # env → the change in force at `at`


class Lineage(Protocol):
    def descends(self, descendant: str, ancestor: str) -> bool: ...

    def pinned(self, commit: str, environment: str, model: str) -> str | None: ...


def build(
    model: str,
    changes: Sequence[PinChange],
    registered: RegisteredModel | None,
    environments: Sequence[str] = (),
    at: datetime | None = None,
    lineage: Lineage | None = None,
) -> History:
    following: dict[int, PinChange | None] = {}
    last: dict[str, int] = {}
    for index, change in enumerate(changes):  # oldest first
        if change.environment in last:
            following[last[change.environment]] = change
        last[change.environment] = index
    wanted = [
        (change, following.get(index))
        for index, change in enumerate(changes)
        if not environments or change.environment in environments
    ]
    entries = []
    for change, nxt in reversed(wanted):
        found = _applied_version(change, nxt, registered, lineage)
        record = found[1] if found is not None else None
        entries.append(
            HistoryEntry(
                change,
                _is_rollback(change),
                record is not None,
                record.takeover() if record is not None else None,
                copy=found[0] if found is not None and found[0] != change.after else None,
            )
        )
    pinned_at: tuple[tuple[str, PinChange | None], ...] = ()
    if at is not None:
        names = sorted(set(environments) or {c.environment for c in changes})
        in_scope = [change for change, _next in wanted]
        pinned_at = tuple((env, _in_force(in_scope, env, at)) for env in names)
    return History(model, tuple(entries), at, pinned_at)


def _is_rollback(change: PinChange) -> bool:
    if change.is_revert:
        return True
    return (
        change.before is not None
        and change.after is not None
        and (int(change.after) < int(change.before))
    )


def _applied_version(
    change: PinChange,
    following: PinChange | None,
    registered: RegisteredModel | None,
    lineage: Lineage | None,
) -> tuple[str, audit.AuditRecord] | None:
    """The version that holds the record of this change applied (the pinned number, or a copy
    of it made from another registry: a pin with `from:` names the source's number), and the
    record."""
    if registered is None or change.after is None:
        return None
    copies = sorted(
        (
            v
            for v in registered.versions.values()
            if (copied := CopyLineage.of(v)) is not None
            and copied.model == registered.name
            and copied.version == change.after
        ),
        key=lambda v: int(v.version),
    )
    candidates = [registered.versions.get(change.after), *copies]
    for version in candidates:
        if version is None:
            continue
        record = _record_of(change, following, registered, lineage, version.tags)
        if record is not None:
            return version.version, record
    return None


def _record_of(
    change: PinChange,
    following: PinChange | None,
    registered: RegisteredModel,
    lineage: Lineage | None,
    tags: Mapping[str, str],
) -> audit.AuditRecord | None:
    records = audit.parse(tags.get(audit_tag(change.environment)))
    # A takeover's record first: that is what the history must show for it.
    for record in sorted(records, key=lambda r: r.took_over_from is None):
        if record.dirty or record.action == "retire" or not record.commit:
            continue
        if record.commit == change.commit:
            return record
        if (
            lineage is not None
            and lineage.descends(record.commit, change.commit)
            and not (following is not None and lineage.descends(record.commit, following.commit))
            and lineage.pinned(record.commit, change.environment, registered.name) == change.after
        ):
            return record
    return None


def _in_force(changes: Sequence[PinChange], environment: str, at: datetime) -> PinChange | None:
    found = None
    for change in changes:  # oldest first
        if change.environment == environment and change.date <= at:
            found = change
    return found


def merge(histories: Sequence[History]) -> History:
    """Histories of one model read from several registries (each environment's own) as one,
    newest first."""
    if len(histories) == 1:
        return histories[0]
    entries = sorted(
        (entry for history in histories for entry in history.entries),
        key=lambda entry: entry.change.date,
        reverse=True,
    )
    pinned_at = tuple(sorted(pair for history in histories for pair in history.pinned_at))
    return History(histories[0].model, tuple(entries), histories[0].at, pinned_at)
