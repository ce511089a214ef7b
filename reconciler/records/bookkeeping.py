"""What reconciler keeps in the registry itself (tags), in one place. Pure: names, parsing, values.

Each registered model reconciler changes carries one JSON tag, `reconciler.state`:

    {"environments": {"production": {"commit": "<sha>", "owner": "git:<root sha>",
                                     "plan": "<plan checksum>"}},
     "lease": {"holder": ..., "commit": ..., "acquired": ..., "expires": ..., "host": ...,
               "pid": ..., "apply": "<lease id>",
               "pending": {"production": {"commit": ..., "owner": ..., "plan": ...}}}}

`environments` is the bookkeeping (fencing by ancestry, ownership for prune, which plan did it);
`lease` is present while an apply holds the model (apply/lease.py). Taking the lease is the write
that proves permission on the model, and it already carries what the apply will record there if its
steps land (`pending`). The audit record that apply then writes on the version it put in place
names the lease (`apply`): once every pending environment has such a record, the pending records
count as written and the lease as released (`state_of`), so a model with one change costs three
writes: the lease, the transition, the audit record. Any other ending (a failed step, a repair that
changed the outcome, an adoption without an audit record, an interrupted apply) writes the tag once
more as before: the records that landed, no lease.

Earlier versions kept separate tags (`reconciler.applied_commit.<env>`, `reconciler.managed.<env>`);
they are still read for every environment the JSON does not name.

Audit records stay on the versions they describe (`reconciler.audit.<env>`, audit.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from reconciler.records import audit

if TYPE_CHECKING:
    from reconciler.registry.values import RegisteredModel

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


@dataclass(frozen=True)
class EnvRecord:
    """What the last apply recorded for one model in one environment."""

    commit: str | None = None  # fencing by ancestry: the git commit applied
    owner: str | None = None  # the repository managing it (gitrepo.repository_id); None: nobody
    plan: str | None = None  # checksum of the plan that wrote it (None: an adoption)

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvRecord:
        return cls(
            commit=_str_or_none(data.get("commit")),
            owner=_str_or_none(data.get("owner")),
            plan=_str_or_none(data.get("plan")),
        )


@dataclass(frozen=True)
class ModelState:
    environments: Mapping[str, EnvRecord] = field(default_factory=dict)
    lease: Mapping[str, Any] | None = None  # lease.LeaseRecord as a dict; None when free
    # Per environment, the commit an apply announced whose records never completed (killed
    # between its transition and its audit record, its lease taken over or removed): it may
    # have landed, so it fences like a recorded commit until an apply records that environment.
    attempted: Mapping[str, str] = field(default_factory=dict)

    def with_lease(self, lease: Mapping[str, Any] | None) -> ModelState:
        return replace(self, lease=lease)

    def recording(self, updates: Mapping[str, EnvRecord]) -> ModelState:
        attempted = {env: c for env, c in self.attempted.items() if env not in updates}
        return replace(self, environments={**self.environments, **updates}, attempted=attempted)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "environments": {
                env: record.to_dict() for env, record in sorted(self.environments.items())
            }
        }
        if self.lease is not None:
            data["lease"] = dict(self.lease)
        if self.attempted:
            data["attempted"] = dict(sorted(self.attempted.items()))
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Adoption:
    """An in-sync pin whose bookkeeping is missing or stale: recorded without moving anything."""

    environment: str
    model: str
    version: str
    reason: str
    audit: bool  # whether the serving version gets an `adopt` audit record (none names this commit)

    def describe(self) -> str:
        also = " + adopt audit record" if self.audit else ""
        return (
            f"{self.model} v{self.version}: record applied commit and ownership{also} "
            f"({self.reason})"
        )


def state_of(model: RegisteredModel | None) -> ModelState:
    """A model's bookkeeping and lease as every reader must take them: the records an apply
    announced in its lease (`pending`) count as written for each environment where one of the
    model's versions carries that apply's audit record, and the lease as released once all do;
    the commits of the others count as `attempted`. Needs the versions' tags: `read` gives them
    for the models asked for (`awaits_records` says which others to ask for)."""
    if model is None:
        return ModelState()
    state = parse_state(model.tags)
    token, pending = _announced(state.lease)
    if token is None or not pending:
        return state
    done = {
        env: record
        for env, record in pending.items()
        if any(_names_apply(v.tags.get(audit_tag(env)), token) for v in model.versions.values())
    }
    state = state.recording(done)
    unfinished = {env: r.commit for env, r in pending.items() if env not in done and r.commit}
    state = replace(state, attempted={**state.attempted, **unfinished})
    return state.with_lease(None) if len(done) == len(pending) else state


def awaits_records(tags: Mapping[str, str], owner: str | None = None) -> bool:
    """Whether the model's lease announced records (naming `owner`, if given) that its audit
    records may have completed."""
    token, pending = _announced(parse_state(tags).lease)
    if owner is not None:
        pending = {env: r for env, r in pending.items() if r.owner == owner}
    return token is not None and bool(pending)


def _announced(lease: Mapping[str, Any] | None) -> tuple[str | None, dict[str, EnvRecord]]:
    if not lease or not isinstance(lease.get("apply"), str):
        return None, {}
    try:
        pending = {str(env): EnvRecord.from_dict(r) for env, r in lease["pending"].items()}
    except (KeyError, TypeError, AttributeError):
        return None, {}
    return str(lease["apply"]), pending


def _names_apply(value: str | None, token: str) -> bool:
    """Whether an audit tag value holds a record written by the apply `token`."""
    # Most versions' records name other applies: skip parsing those.
    return bool(value) and token in str(value) and any(r.apply == token for r in audit.parse(value))


def parse_state(tags: Mapping[str, str]) -> ModelState:
    """The model's state tag merged over the legacy tags, as written (`state_of` is how readers
    take it); an unreadable tag counts as empty (a hand edit), so the legacy tags and a fresh
    lease take over."""
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
            environments[str(env)] = EnvRecord.from_dict(record)
        if isinstance(data.get("lease"), dict):
            lease = data["lease"]
        attempted = {str(env): str(c) for env, c in (data.get("attempted") or {}).items() if c}
    except (ValueError, TypeError, AttributeError):
        attempted = {}
    return ModelState(environments, lease, attempted)


def applied_commit(model: RegisteredModel | None, environment: str) -> str | None:
    record = state_of(model).environments.get(environment)
    return record.commit if record else None


def owner(model: RegisteredModel | None, environment: str) -> str | None:
    record = state_of(model).environments.get(environment)
    return record.owner if record else None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
