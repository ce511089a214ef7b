"""Audit records kept on model versions: who applied what, from which commit, replacing what.

Pure: building and parsing tag values. One tag per environment on each version, holding the
newest AUDIT_KEEP records as a JSON list, so one write records one change.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

AUDIT_KEEP = 20  # records kept per version and environment (a tag value is capped in size)

_MERGE = re.compile(r"^Merge pull request #(\d+)")
_SQUASH = re.compile(r"\(#(\d+)\)\s*$")


@dataclass(frozen=True)
class AuditRecord:
    environment: str
    action: str  # promote | rollback | correct (drift put right) | adopt | retire
    time: str  # ISO 8601, UTC
    commit: str | None = None
    previous: tuple[str, ...] = ()
    actor: str | None = None
    pull_request: str | None = None
    dirty: bool = False  # applied with --allow-dirty: not exactly `commit`
    # The lease id of the apply that wrote it: the record that also releases that apply's lease
    # (bookkeeping.state_of). None in records of earlier versions and of explicit releases.
    apply: str | None = None
    workspace: str | None = None  # the registry workspace applied in, when it has workspaces
    # `apply --take-ownership`: the repository that owned the model there before (its identity
    # and name, as its records said).
    took_over_from: str | None = None
    took_over_from_name: str | None = None

    def takeover(self) -> str | None:
        """Whom this apply took the model over from, as people read it; None if nobody."""
        if self.took_over_from is None:
            return None
        if self.took_over_from_name:
            return f"{self.took_over_from_name} ({self.took_over_from})"
        return self.took_over_from


def action_for(version: str, previous: tuple[str, ...]) -> str:
    """promote, rollback (every previous holder was newer), or correct (it was there already:
    drift around it was put right)."""
    if version in previous:
        return "correct"
    if previous and all(int(p) > int(version) for p in previous):
        return "rollback"
    return "promote"


def append(existing: str | None, record: AuditRecord) -> str:
    records = [_record_json(r) for r in parse(existing)]
    records.append(_record_json(record))
    return json.dumps(records[-AUDIT_KEEP:], separators=(",", ":"))


def _record_json(record: AuditRecord) -> dict[str, object]:
    data = asdict(record)
    # The usual case stays as short as before (tag values are capped).
    if not record.dirty:
        del data["dirty"]
    for key in ("apply", "workspace", "took_over_from", "took_over_from_name"):
        if data[key] is None:
            del data[key]
    return data


def parse(value: str | None) -> list[AuditRecord]:
    """The records in a tag value; an unreadable value counts as none (a hand edit)."""
    if not value:
        return []
    try:
        data = json.loads(value)
        return [
            AuditRecord(
                environment=str(item["environment"]),
                action=str(item["action"]),
                time=str(item["time"]),
                commit=item.get("commit"),
                previous=tuple(str(v) for v in item.get("previous") or ()),
                actor=item.get("actor"),
                pull_request=item.get("pull_request"),
                dirty=item.get("dirty") is True,
                apply=_str_or_none(item.get("apply")),
                workspace=_str_or_none(item.get("workspace")),
                took_over_from=_str_or_none(item.get("took_over_from")),
                took_over_from_name=_str_or_none(item.get("took_over_from_name")),
            )
            for item in data
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def pull_request_from_message(message: str | None) -> str | None:
    """`Merge pull request #12 from …` or a squash merge's `Title (#12)`: the PR number."""
    if not message:
        return None
    first = message.strip().splitlines()[0] if message.strip() else ""
    for pattern in (_MERGE, _SQUASH):
        found = pattern.search(first)
        if found:
            return found.group(1)
    return None
