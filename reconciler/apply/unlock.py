"""`reconciler unlock`: remove the leases of applies that died (Terraform's force-unlock), rewrite
state tags this version cannot read (with `--force`), and say which fences applies that never
recorded left behind (kept: they are fences, not locks)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from reconciler.apply.lease_record import LeaseRecord, lease_of, this_host
from reconciler.records.bookkeeping import (
    LEGACY_LEASE_TAG,
    LEGACY_STATE_MODEL,
    STATE_TAG,
    ModelState,
    awaits_records,
    salvage,
    state_of,
)
from reconciler.registry.base import Registry
from reconciler.registry.values import RegisteredModel


@dataclass(frozen=True)
class Unlocked:
    model: str
    record: LeaseRecord | None  # None: a state tag this version cannot read (kind "state")
    removed: bool  # False: kept (a live holder, or an unreadable tag; --force removes it)
    why: str  # "expired", "holder gone", "forced", or why it was kept
    kind: Literal["lease", "state"] = "lease"


@dataclass(frozen=True)
class Fence:
    """An environment an apply may have changed without recording it (killed between its
    transition and its audit record, its lease removed or taken over): its commit fences older
    ones until an apply records that environment. Reported, never removed."""

    model: str
    environment: str
    commit: str
    version: str | None = None  # the version it announced: it fences only while that serves


@dataclass(frozen=True)
class UnlockReport:
    items: list[Unlocked] = field(default_factory=list)
    fences: list[Fence] = field(default_factory=list)


def unlock(
    registry: Registry,
    models: Collection[str] = (),
    force: bool = False,
    clock: Callable[[], float] = time.time,
) -> UnlockReport:
    """`reconciler unlock`: remove lease records left by applies that died (expired, or their
    process gone on this host); with `force`, any (Terraform's force-unlock: only when you know
    the holder is not running), and rewrite unreadable state tags keeping what can be read. Also
    the registry-wide lease of earlier versions."""
    actual = registry.read(())
    # A lease its audit records may have released: those records are on versions the overview
    # does not list (it has the latest version per stage).
    finished = sorted(name for name, m in actual.models.items() if awaits_records(m.tags))
    if finished:
        actual = registry.read(finished)
    now = clock()
    report = UnlockReport()
    for name in sorted(actual.models):
        if models and name not in models:
            continue
        registered = actual.models[name]
        tags = registered.tags
        state = state_of(registered)
        if name == LEGACY_STATE_MODEL and LEGACY_LEASE_TAG in tags:
            legacy = LeaseRecord.parse(tags[LEGACY_LEASE_TAG])
            if legacy is not None:
                removed, why = _free(legacy, now, force)
                if removed:
                    registry.delete_model_tag(name, LEGACY_LEASE_TAG)
                report.items.append(Unlocked(name, legacy, removed, why))
            continue
        if state.unreadable is not None:
            report.items.append(_unreadable(registry, name, tags, state, force))
            continue
        record = lease_of(registered)
        live: set[str] = set()
        if record is not None:
            removed, why = _free(record, now, force)
            if removed:
                registry.set_model_tag(name, STATE_TAG, state.with_lease(None).to_json())
            else:
                live = _announced_by(registered)
            report.items.append(Unlocked(name, record, removed, why))
        report.fences.extend(
            Fence(name, env, commit, move.version if (move := state.moves.get(env)) else None)
            for env, commit in sorted(state.attempted.items())
            if env not in live  # a live apply's own announcement: not left behind
        )
    return report


def _free(record: LeaseRecord, now: float, force: bool) -> tuple[bool, str]:
    if record.expires <= now:
        return True, "expired"
    if record.holder_gone():
        return True, "holder gone"
    if force:
        return True, "forced"
    if record.host == this_host():
        return False, "held by a live apply"
    return False, "held by an apply elsewhere (whether it still runs cannot be told from here)"


def _announced_by(registered: RegisteredModel) -> set[str]:
    """The environments a (live) lease on the model announced records for."""
    pending = (state_of(registered).lease or {}).get("pending") or {}
    return {str(env) for env in pending}


def _unreadable(
    registry: Registry, name: str, tags: Mapping[str, str], state: ModelState, force: bool
) -> Unlocked:
    """A state tag this version cannot read: kept unless `force`; then a newer reconciler's
    loses only its lease, and any other is rewritten with what can still be read."""
    if state.newer:
        what = f"its reconciler.state tag was {state.unreadable}"
        data = json.loads(tags[STATE_TAG])  # a newer format is a JSON object (state_shape)
        if "lease" not in data:
            return Unlocked(name, None, False, f"{what}; it holds no lease", "state")
        if not force:
            return Unlocked(
                name, None, False, f"{what}: upgrade reconciler; --force removes only its lease",
                "state",
            )  # fmt: skip
        del data["lease"]
        registry.set_model_tag(name, STATE_TAG, json.dumps(data, separators=(",", ":")))
        return Unlocked(name, None, True, f"forced: {what}; removed only its lease", "state")
    what = f"its reconciler.state tag is unreadable ({state.unreadable})"
    if not force:
        return Unlocked(
            name,
            None,
            False,
            f"{what}, so whether an apply holds it cannot be told; --force rewrites it keeping "
            "what can be read",
            "state",
        )
    salvaged, dropped = salvage(tags)
    registry.set_model_tag(name, STATE_TAG, salvaged.to_json())
    kept = len(salvaged.environments)
    return Unlocked(
        name,
        None,
        True,
        f"forced: {what}; rewritten keeping {kept} environment record(s)"
        + (f" and {len(salvaged.attempted)} attempted commit(s)" if salvaged.attempted else "")
        + (f", dropping {', '.join(dropped)}" if dropped else ""),
        "state",
    )


def merge(reports: Sequence[UnlockReport]) -> UnlockReport:
    """Unlocks in several registries as one report."""
    return UnlockReport(
        [item for report in reports for item in report.items],
        [fence for report in reports for fence in report.fences],
    )
