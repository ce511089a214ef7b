"""The shape of the `reconciler.state` tag, checked field by field before anyone trusts it.

Pure. A tag that is not exactly what this version writes (truncated JSON, `null`, a list, a field
of the wrong type, `pid: 1e21`, `expires: 1e400`, a field it does not know) is never read as
"nothing recorded": that would let an apply overwrite a live lease or open a fence. It is
`Unreadable`, with what is wrong in one phrase; a tag of a newer format is `newer`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

STATE_FORMAT = 1  # what this version writes; a tag naming a higher one is a newer reconciler's
MAX_PID = 2**31 - 1  # pid_t: a larger one is nobody's (os.kill would overflow)

_RECORD_FIELDS = ("commit", "owner", "owner_name", "plan")  # per environment (EnvRecord)
_PENDING_FIELDS = (*_RECORD_FIELDS, "version", "previous")  # announced: also the move it makes
_LEASE_STRINGS = ("holder", "commit", "host", "apply")
_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_TOP = ("format", "environments", "lease", "attempted", "attempted_moves")


class Unreadable(ValueError):
    """The tag cannot be trusted; `problem` says why in one phrase."""

    def __init__(self, problem: str, newer: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.newer = newer


def decode(text: str) -> dict[str, Any]:
    """The tag's JSON object, every field checked; raises Unreadable naming the first problem."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise Unreadable(f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise Unreadable(f"not a JSON object but {_kind(data)}")
    version = data.get("format", STATE_FORMAT)
    if _is_int(version) and version > STATE_FORMAT:
        raise Unreadable(
            f"written by a newer reconciler (state format {version}; this one reads format "
            f"{STATE_FORMAT})",
            newer=True,
        )
    if version != STATE_FORMAT or not _is_int(version):
        raise Unreadable(f"format: expected {STATE_FORMAT}, found {_shown(version)}")
    for key in data:
        if key not in _TOP:
            raise Unreadable(f"unknown field {key!r} (a hand edit, or a newer reconciler)")
    for env, record in _object(data, "environments").items():
        _record(record, f"environments.{env}", _RECORD_FIELDS)
    for env, commit in _object(data, "attempted").items():
        _commit(commit, f"attempted.{env}")
    for env, move in _object(data, "attempted_moves").items():
        _record(move, f"attempted_moves.{env}", ("version", "previous"))
        if "version" not in move:
            raise Unreadable(f"attempted_moves.{env}.version: missing")
    if data.get("lease") is not None:
        _lease(data["lease"])
    return data


def _lease(lease: object) -> None:
    if not isinstance(lease, dict):
        raise Unreadable(f"lease: expected an object, found {_kind(lease)}")
    known = (*_LEASE_STRINGS, "acquired", "expires", "pid", "pending")
    for key in lease:
        if key not in known:
            raise Unreadable(f"lease: unknown field {key!r}")
    for key in ("holder", "acquired", "expires"):
        if key not in lease:
            raise Unreadable(f"lease.{key}: missing")
    _string(lease["holder"], "lease.holder")
    for key in _LEASE_STRINGS[1:]:
        if lease.get(key) is not None:
            _string(lease[key], f"lease.{key}")
    for key in ("acquired", "expires"):
        value = lease[key]
        if not (_is_number(value) and math.isfinite(value)):
            raise Unreadable(f"lease.{key}: expected a time in seconds, found {_shown(value)}")
    pid = lease.get("pid")
    if pid is not None and not (_is_int(pid) and 0 < pid <= MAX_PID):
        raise Unreadable(
            f"lease.pid: expected a process id (a whole number from 1 to {MAX_PID}), found "
            f"{_shown(pid)}"
        )
    pending = lease.get("pending")
    if pending is not None:
        if not isinstance(pending, dict):
            raise Unreadable(f"lease.pending: expected an object, found {_kind(pending)}")
        if lease.get("apply") is None:
            raise Unreadable("lease.pending: announced records without the lease's apply id")
        for env, record in pending.items():
            _record(record, f"lease.pending.{env}", _PENDING_FIELDS)


def _record(record: object, where: str, fields: tuple[str, ...]) -> None:
    if not isinstance(record, dict):
        raise Unreadable(f"{where}: expected an object, found {_kind(record)}")
    for key, value in record.items():
        if key not in fields:
            raise Unreadable(f"{where}: unknown field {key!r}")
        if key == "previous":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise Unreadable(f"{where}.previous: expected a list of versions")
        elif key == "commit" and value is not None:
            _commit(value, f"{where}.commit")
        elif value is not None:
            _string(value, f"{where}.{key}")


def _commit(value: object, where: str) -> None:
    """A git object name (SHA-1, or SHA-256 repositories'): anything else is a hand edit, and
    would reach `git` as an argument and the status table as a commit."""
    _string(value, where)
    assert isinstance(value, str)
    if not _COMMIT.fullmatch(value):
        raise Unreadable(f"{where}: expected a commit id (40 hex digits), found {_shown(value)}")


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unreadable(f"{key}: expected an object, found {_kind(value)}")
    return value


def _string(value: object, where: str) -> None:
    if not isinstance(value, str):
        raise Unreadable(f"{where}: expected a string, found {_shown(value)}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


def _kind(value: object) -> str:
    kinds: dict[type, str] = {
        list: "a list",
        str: "a string",
        bool: "true/false",
        dict: "an object",
    }
    if value is None:
        return "null"
    if _is_number(value):
        return f"the number {_shown(value)}"
    return kinds.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    """A value as the tag holds it, short: `1e+21`, `inf`, `"abc"`."""
    shown: Callable[[object], str] = json.dumps
    try:
        text = shown(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
