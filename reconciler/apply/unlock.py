"""`reconciler unlock`: remove the leases of applies that died (Terraform's force-unlock)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from reconciler.apply.lease import LeaseRecord, lease_of, this_host
from reconciler.records.bookkeeping import (
    LEGACY_LEASE_TAG,
    LEGACY_STATE_MODEL,
    STATE_TAG,
    awaits_records,
    state_of,
)
from reconciler.registry.base import Registry


@dataclass(frozen=True)
class Unlocked:
    model: str
    record: LeaseRecord
    removed: bool  # False: kept (a live holder; --force removes it)
    why: str  # "expired", "holder gone", "forced", or why it was kept


def unlock(
    registry: Registry,
    models: Collection[str] = (),
    force: bool = False,
    clock: Callable[[], float] = time.time,
) -> list[Unlocked]:
    """`reconciler unlock`: remove lease records left by applies that died (expired, or their
    process gone on this host); with `force`, any (Terraform's force-unlock: only when you know
    the holder is not running). Also the registry-wide lease of earlier versions."""
    actual = registry.read(())
    # A lease its audit records may have released: those records are on versions the overview
    # does not list (it has the latest version per stage).
    finished = sorted(name for name, m in actual.models.items() if awaits_records(m.tags))
    if finished:
        actual = registry.read(finished)
    now = clock()
    found: list[Unlocked] = []
    for name in sorted(actual.models):
        if models and name not in models:
            continue
        tags = actual.models[name].tags
        legacy = name == LEGACY_STATE_MODEL and LEGACY_LEASE_TAG in tags
        record = (
            LeaseRecord.parse(tags[LEGACY_LEASE_TAG]) if legacy else lease_of(actual.models[name])
        )
        if record is None:
            continue
        if record.expires <= now:
            why = "expired"
        elif record.holder_gone():
            why = "holder gone"
        elif force:
            why = "forced"
        else:
            where = (
                "held by a live apply"
                if record.host == this_host()
                else "held by an apply elsewhere (whether it still runs cannot be told from here)"
            )
            found.append(Unlocked(name, record, False, where))
            continue
        if legacy:
            registry.delete_model_tag(name, LEGACY_LEASE_TAG)
        else:
            state = state_of(actual.models[name]).with_lease(None)
            registry.set_model_tag(name, STATE_TAG, state.to_json())
        found.append(Unlocked(name, record, True, why))
    return found
