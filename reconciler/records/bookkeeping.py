"""What reconciler keeps in the registry itself (tags), in one place. Pure: names, parsing, values.

Each registered model reconciler changes carries one JSON tag, `reconciler.state`:

    {"format": 1,
     "environments": {"production": {"commit": "<sha>", "owner": "git:<root sha>",
                                     "owner_name": "<origin URL>", "plan": "<plan checksum>"}},
     "lease": {"holder": ..., "commit": ..., "acquired": ..., "expires": ..., "host": ...,
               "pid": ..., "apply": "<lease id>",
               "pending": {"production": {"commit": ..., "owner": ..., "plan": ...,
                                          "version": "5", "previous": ["4"]}}},
     "attempted": {"staging": "<sha>"},
     "attempted_moves": {"staging": {"version": "3", "previous": ["2"]}}}

`environments` is the bookkeeping (fencing by ancestry, ownership for prune, which plan did it);
`lease` is present while an apply holds the model (apply/lease.py). Taking the lease is the write
that proves permission on the model, and it already carries what the apply will record there if its
steps land (`pending`). The audit record that apply then writes on the version it put in place
names the lease (`apply`): once every pending environment has such a record, the pending records
count as written and the lease as released (`state_of`), so a model with one change costs three
writes: the lease, the transition, the audit record. Any other ending (a failed step, a repair that
changed the outcome, an adoption without an audit record, an interrupted apply) writes the tag once
more as before: the records that landed, no lease.

A tag of any other shape is never read as "nothing recorded" (state_shape.py): the state is
`unreadable` and apply refuses the model until `reconciler unlock --force` rewrites it.

Earlier versions kept separate tags (`reconciler.applied_commit.<env>`, `reconciler.managed.<env>`);
they are still read for every environment the JSON does not name.

Audit records stay on the versions they describe (`reconciler.audit.<env>`, audit.py).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from reconciler.records import audit
from reconciler.records.state_shape import STATE_FORMAT, Unreadable, decode

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
    # How people know the owner (its origin URL, credentials removed): refusals name it.
    owner_name: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvRecord:
        return cls(
            commit=_str_or_none(data.get("commit")),
            owner=_str_or_none(data.get("owner")),
            plan=_str_or_none(data.get("plan")),
            owner_name=_str_or_none(data.get("owner_name")),
        )


@dataclass(frozen=True)
class Move:
    """What an apply's steps put in place in one environment, as its lease announces it: the
    version and the versions serving before. An apply killed before its audit record leaves it
    behind, so the next apply records the promotion it was (not an adoption)."""

    version: str
    previous: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "previous": list(self.previous)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Move | None:
        version = data.get("version")
        if version is None:
            return None
        return cls(str(version), tuple(str(v) for v in data.get("previous") or ()))


@dataclass(frozen=True)
class ModelState:
    environments: Mapping[str, EnvRecord] = field(default_factory=dict)
    lease: Mapping[str, Any] | None = None  # lease.LeaseRecord as a dict; None when free
    # Per environment, the commit an apply announced whose records never completed (killed
    # between its transition and its audit record, its lease taken over or removed): it may
    # have landed, so it fences like a recorded commit until an apply records that environment.
    attempted: Mapping[str, str] = field(default_factory=dict)
    # What those applies announced they would put in place there (when they said).
    moves: Mapping[str, Move] = field(default_factory=dict)
    # Why the tag cannot be trusted (state_shape.py), or None; `newer`: a newer reconciler's.
    unreadable: str | None = None
    newer: bool = False

    def with_lease(self, lease: Mapping[str, Any] | None) -> ModelState:
        return replace(self, lease=lease)

    def recording(self, updates: Mapping[str, EnvRecord]) -> ModelState:
        attempted = {env: c for env, c in self.attempted.items() if env not in updates}
        moves = {env: m for env, m in self.moves.items() if env not in updates}
        return replace(
            self,
            environments={**self.environments, **updates},
            attempted=attempted,
            moves=moves,
        )

    def attempting(self, commits: Mapping[str, str], moves: Mapping[str, Move]) -> ModelState:
        """These environments may have been changed by an apply of these commits (its records
        never completed), putting these versions in place where it said."""
        kept = {env: m for env, m in self.moves.items() if env not in commits}
        return replace(
            self,
            attempted={**self.attempted, **commits},
            moves={**kept, **{env: m for env, m in moves.items() if env in commits}},
        )

    def to_json(self) -> str:
        if self.unreadable is not None:
            raise ValueError(f"refusing to write back an unreadable state tag: {self.unreadable}")
        data: dict[str, Any] = {
            "format": STATE_FORMAT,
            "environments": {
                env: record.to_dict() for env, record in sorted(self.environments.items())
            },
        }
        if self.lease is not None:
            data["lease"] = dict(self.lease)
        if self.attempted:
            data["attempted"] = dict(sorted(self.attempted.items()))
            moves = {env: m.to_dict() for env, m in self.moves.items() if env in self.attempted}
            if moves:
                data["attempted_moves"] = dict(sorted(moves.items()))
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def refusal(self, model: str) -> str | None:
        """Why apply must not touch `model` with this tag, and how to recover; None if it may."""
        if self.unreadable is None:
            return None
        if self.newer:
            return (
                f"registered model {model!r}: its reconciler.state tag was {self.unreadable}: "
                "upgrade reconciler to apply it (`reconciler unlock --force --model "
                f"{model}` would remove only its lease); nothing was changed"
            )
        return (
            f"registered model {model!r}: its reconciler.state tag is unreadable "
            f"({self.unreadable}), so its fence, ownership and lease cannot be judged; nothing "
            f"was changed. `reconciler unlock --force --model {model}` rewrites it keeping what "
            "can be read (look at the tag first: a hand edit?)"
        )


@dataclass(frozen=True)
class Adoption:
    """An in-sync pin whose bookkeeping is missing or stale: recorded without moving anything."""

    environment: str
    model: str
    version: str
    reason: str
    audit: bool  # whether the serving version gets an audit record (none names this commit)
    # A move an apply made and was killed before recording (its lease announced it): recorded
    # as the promotion (or rollback) it was, replacing these versions. None: a plain adoption.
    previous: tuple[str, ...] | None = None
    # `apply --take-ownership` of an in-sync pin another repository owns: that owner.
    took_over_from: EnvRecord | None = None

    @property
    def action(self) -> str:
        """The audit record's action: adopt, or the promotion or rollback it completes."""
        if self.previous is None:
            return "adopt"
        return audit.action_for(self.version, self.previous)

    def describe(self) -> str:
        also = f" + {self.action} audit record" if self.audit else ""
        taken = (
            f"; takes it over from {describe_owner(self.took_over_from)}"
            if self.took_over_from is not None
            else ""
        )
        return (
            f"{self.model} v{self.version}: record applied commit and ownership{also} "
            f"({self.reason}{taken})"
        )


def describe_owner(record: EnvRecord) -> str:
    """A repository as refusals and plans name it: its name (origin URL) and its identity."""
    owner = record.owner or "nobody"
    kind, _, value = owner.partition(":")
    identity = {"git": f"root commit {value[:12]}", "path": f"folder {value}"}.get(kind, owner)
    if record.owner_name:
        return f"{record.owner_name} ({identity})"
    return f"the repository with {identity} (it recorded no name)"


def state_of(model: RegisteredModel | None) -> ModelState:
    """A model's bookkeeping and lease as every reader must take them: the records an apply
    announced in its lease (`pending`) count as written for each environment where one of the
    model's versions carries that apply's audit record, and the lease as released once all do;
    the commits of the others count as `attempted`. Needs the versions' tags: `read` gives them
    for the models asked for (`awaits_records` says which others to ask for). An unreadable tag
    gives a state that says so (`unreadable`), with the legacy tags only."""
    if model is None:
        return ModelState()
    return _completed(parse_state(model.tags), model)


def interrupted_moves(
    model: RegisteredModel | None, own_apply: str | None = None
) -> dict[str, tuple[str, Move]]:
    """Per environment, the commit and move of an apply whose records never completed there
    (killed between its transition and its audit record). The announcement of the lease
    `own_apply` (the apply asking, which holds the model) is not one: it has not finished yet."""
    if model is None:
        return {}
    lease = parse_state(model.tags).lease or {}
    if own_apply is not None and lease.get("apply") == own_apply:
        state = parse_state(model.tags)  # the ones left before this apply took the lease
    else:
        state = state_of(model)
    return {
        env: (state.attempted[env], m) for env, m in state.moves.items() if env in state.attempted
    }


def settled(model: RegisteredModel | None, sent: Collection[str]) -> ModelState:
    """The state to write back when an apply gives its lease up: as `state_of` takes it, except
    that of the records its lease announced, only those of environments in `sent` (where a write
    may have gone out) count as attempted; the others are dropped, so an apply refused or failed
    before writing leaves the fence as it found it. The lease is dropped."""
    if model is None:
        return ModelState()
    return _completed(parse_state(model.tags), model, set(sent)).with_lease(None)


def _completed(
    state: ModelState, model: RegisteredModel, sent: set[str] | None = None
) -> ModelState:
    token, pending, moves = _announced(state.lease)
    if token is None or not pending:
        return state
    done = {
        env: record
        for env, record in pending.items()
        if any(_names_apply(v.tags.get(audit_tag(env)), token) for v in model.versions.values())
    }
    state = state.recording(done)
    unfinished = {
        env: r.commit
        for env, r in pending.items()
        if env not in done and r.commit and (sent is None or env in sent)
    }
    state = state.attempting(unfinished, moves)
    return state.with_lease(None) if len(done) == len(pending) else state


def awaits_records(tags: Mapping[str, str], owner: str | None = None) -> bool:
    """Whether the model's lease announced records (naming `owner`, if given) that its audit
    records may have completed."""
    token, pending, _moves = _announced(parse_state(tags).lease)
    if owner is not None:
        pending = {env: r for env, r in pending.items() if r.owner == owner}
    return token is not None and bool(pending)


def _announced(
    lease: Mapping[str, Any] | None,
) -> tuple[str | None, dict[str, EnvRecord], dict[str, Move]]:
    """The lease's apply id, the records it announced and the moves it said they make (the
    lease's shape is checked by parse_state)."""
    if not lease or not isinstance(lease.get("apply"), str):
        return None, {}, {}
    pending = lease.get("pending") or {}
    records = {str(env): EnvRecord.from_dict(r) for env, r in pending.items()}
    moves = {str(env): m for env, r in pending.items() if (m := Move.from_dict(r)) is not None}
    return str(lease["apply"]), records, moves


def _names_apply(value: str | None, token: str) -> bool:
    """Whether an audit tag value holds a record written by the apply `token`."""
    # Most versions' records name other applies: skip parsing those.
    return bool(value) and token in str(value) and any(r.apply == token for r in audit.parse(value))


def parse_state(tags: Mapping[str, str]) -> ModelState:
    """The model's state tag merged over the legacy tags, as written (`state_of` is how readers
    take it). A tag of any shape but the one this version writes is `unreadable` (with what is
    wrong), never read as empty: the legacy tags only, no lease."""
    environments = _legacy(tags)
    text = tags.get(STATE_TAG)
    if not text:  # absent, or emptied by hand: nothing recorded in it
        return ModelState(environments)
    try:
        data = decode(text)
    except Unreadable as unreadable:
        return ModelState(environments, unreadable=unreadable.problem, newer=unreadable.newer)
    for env, record in (data.get("environments") or {}).items():
        environments[env] = EnvRecord.from_dict(record)
    moves = {
        env: move
        for env, data_move in (data.get("attempted_moves") or {}).items()
        if (move := Move.from_dict(data_move)) is not None
    }
    return ModelState(environments, data.get("lease"), dict(data.get("attempted") or {}), moves)


def salvage(tags: Mapping[str, str]) -> tuple[ModelState, list[str]]:
    """What can still be read from an unreadable state tag (`unlock --force`): every environment
    record and attempted commit of the right shape, and the commits a broken lease announced
    (as attempted: they may have landed); no lease. Also what was dropped."""
    environments = _legacy(tags)
    dropped: list[str] = []
    try:
        data = json.loads(tags.get(STATE_TAG) or "{}", parse_constant=lambda _name: None)
    except (ValueError, RecursionError):
        return ModelState(environments), ["the whole tag (not JSON)"]
    if not isinstance(data, dict):
        return ModelState(environments), ["the whole tag (not a JSON object)"]
    attempted: dict[str, str] = {}
    for env, record in _items(data.get("environments")):
        try:
            decode(json.dumps({"environments": {env: record}}))
            environments[env] = EnvRecord.from_dict(record)
        except (Unreadable, TypeError, ValueError):
            dropped.append(f"environments.{env}")
    for env, commit in _items(data.get("attempted")):
        if isinstance(commit, str):
            attempted[env] = commit
        else:
            dropped.append(f"attempted.{env}")
    lease = data.get("lease")
    for env, record in _items(lease.get("pending") if isinstance(lease, dict) else None):
        if isinstance(record, dict) and isinstance(record.get("commit"), str):
            attempted.setdefault(env, record["commit"])
    if lease is not None:
        dropped.append("the lease")
    dropped.extend(f"field {key!r}" for key in data if key not in _SALVAGED)
    return ModelState(environments, None, attempted), dropped


_SALVAGED = ("format", "environments", "attempted", "lease")


def _items(value: object) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in value.items()] if isinstance(value, dict) else []


def _legacy(tags: Mapping[str, str]) -> dict[str, EnvRecord]:
    environments: dict[str, EnvRecord] = {}
    for key, value in tags.items():
        for prefix, name in (
            ("reconciler.applied_commit.", "commit"),
            ("reconciler.managed.", "owner"),
        ):
            if key.startswith(prefix):
                env = key[len(prefix) :]
                environments[env] = replace(environments.get(env, EnvRecord()), **{name: value})
    return environments


def applied_commit(model: RegisteredModel | None, environment: str) -> str | None:
    record = state_of(model).environments.get(environment)
    return record.commit if record else None


def owner(model: RegisteredModel | None, environment: str) -> str | None:
    record = state_of(model).environments.get(environment)
    return record.owner if record else None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
