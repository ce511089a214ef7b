"""What reconciler keeps in the registry itself (tags), in one place. Pure: names, parsing, values.

Each registered model reconciler changes carries one JSON tag, `reconciler.state`:

    {"environments": {"production": {"commit": "<sha>", "owner": "git:<root sha>",
                                     "plan": "<plan checksum>"}},
     "lease": {"holder": ..., "commit": ..., "acquired": ..., "expires": ..., "host": ...,
               "pid": ...}}

`environments` is the bookkeeping (fencing by ancestry, ownership for prune, which plan did it);
`lease` is present while an apply holds the model (lease.py). One tag, so the write that records
a model's apply also releases its lease, and taking the lease proves write permission (one write
per model). Earlier versions kept separate tags (`reconciler.applied_commit.<env>`,
`reconciler.managed.<env>`); they are still read for every environment the JSON does not name.

Audit records stay on the versions they describe (`reconciler.audit.<env>`, audit.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

STATE_TAG = "reconciler.state"

# Read only (written by earlier versions): the one-writer lease on a registered model of its own.
# Not a user's model: `import` skips it where it still exists.
LEGACY_STATE_MODEL = "reconciler-state"
LEGACY_LEASE_TAG = "reconciler.lease"


def applied_commit_tag(environment: str) -> str:
    """Legacy (read only): the last git commit applied to the model in `environment`."""
    return f"reconciler.applied_commit.{environment}"


def managed_tag(environment: str) -> str:
    """Legacy (read only, removed when a pin is retired): the repository owning the model in
    `environment`."""
    return f"reconciler.managed.{environment}"


def audit_tag(environment: str) -> str:
    """On a model version: JSON list of the applies that put it in `environment`, newest last."""
    return f"reconciler.audit.{environment}"


AUDIT_KEEP = 20  # records kept per version and environment (a tag value is capped in size)


@dataclass(frozen=True)
class EnvRecord:
    """What the last apply recorded for one model in one environment."""

    commit: str | None = None  # fencing by ancestry: the git commit applied
    owner: str | None = None  # the repository managing it (gitrepo.repository_id); None: nobody
    plan: str | None = None  # checksum of the plan that wrote it (None: an adoption)


@dataclass(frozen=True)
class ModelState:
    environments: Mapping[str, EnvRecord] = field(default_factory=dict)
    lease: Mapping[str, Any] | None = None  # lease.LeaseRecord as a dict; None when free

    def with_lease(self, lease: Mapping[str, Any] | None) -> ModelState:
        return replace(self, lease=lease)

    def recording(self, updates: Mapping[str, EnvRecord]) -> ModelState:
        return replace(self, environments={**self.environments, **updates})

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "environments": {
                env: {k: v for k, v in vars(record).items() if v is not None}
                for env, record in sorted(self.environments.items())
            }
        }
        if self.lease is not None:
            data["lease"] = dict(self.lease)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Adoption:
    """An in-sync pin whose bookkeeping is missing or stale: recorded without moving anything."""

    environment: str
    model: str
    version: str
    reason: str
    audit: bool  # whether the serving version gets an `adopt` audit record (it has none there)

    def describe(self) -> str:
        also = " + adopt audit record" if self.audit else ""
        return (
            f"{self.model} v{self.version}: record applied commit and ownership{also} "
            f"({self.reason})"
        )


def parse_state(tags: Mapping[str, str]) -> ModelState:
    """The model's state tag merged over the legacy tags; an unreadable tag counts as empty (a
    hand edit), so the legacy tags and a fresh lease take over."""
    environments: dict[str, EnvRecord] = {}
    for key, value in tags.items():
        for prefix, name in (
            ("reconciler.applied_commit.", "commit"),
            ("reconciler.managed.", "owner"),
        ):
            if key.startswith(prefix):
                env = key[len(prefix) :]
                environments[env] = replace(environments.get(env, EnvRecord()), **{name: value})
    lease = None
    try:
        data = json.loads(tags.get(STATE_TAG) or "{}")
        for env, record in (data.get("environments") or {}).items():
            environments[str(env)] = EnvRecord(
                commit=_str_or_none(record.get("commit")),
                owner=_str_or_none(record.get("owner")),
                plan=_str_or_none(record.get("plan")),
            )
        if isinstance(data.get("lease"), dict):
            lease = data["lease"]
    except (ValueError, TypeError, AttributeError):
        pass
    return ModelState(environments, lease)


def applied_commit(tags: Mapping[str, str], environment: str) -> str | None:
    record = parse_state(tags).environments.get(environment)
    return record.commit if record else None


def owner(tags: Mapping[str, str], environment: str) -> str | None:
    record = parse_state(tags).environments.get(environment)
    return record.owner if record else None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
