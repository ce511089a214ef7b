"""One writer per model: a lease kept in each registered model's state tag (bookkeeping.py).

An apply leases exactly the models it is about to write, so teams allowed to write only their own
models never need a shared record, and taking the lease proves write permission on each model
before any stage moves (the permission proof folded into a write made anyway). Leases are taken
all at once: write our record into every model's tag (`parallelism` at a time), wait `settle`
seconds ONCE, then read them all back in one registry read (the one the plan under the lease
uses). If any record is someone else's, we lost a race on it: release every model we won and
retry after a jittered pause, so two applies wanting overlapping models never hold one each and
wait forever.

MLflow has no compare-and-set, so this is write-then-confirm. Residual risk (README): if a
writer's read-to-write gap exceeds `settle`, both may believe they hold a model; applies then still
converge (each verifies and repairs what it touched). A record whose holder is a process that is
gone on this same host is free at once; others are taken over `ttl` seconds after their last
renewal, by the taker's clock (`reconciler unlock` removes them by hand).

No separate release write when all goes to plan: the lease announces the records the apply will
make (`acquire(intents=...)`), and the audit records it then writes name the lease, which releases
it (bookkeeping.state_of). Otherwise `finish` records what landed and drops the lease in one write.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

# Re-exported: readers of leases have always imported these from here.
from reconciler.apply.lease_record import LeaseRecord as LeaseRecord
from reconciler.apply.lease_record import check_readable
from reconciler.apply.lease_record import lease_of as lease_of
from reconciler.apply.lease_record import this_host as this_host
from reconciler.errors import ReconcilerError, RegistryPermissionDenied
from reconciler.planning.steps import Step
from reconciler.records.bookkeeping import (
    STATE_TAG,
    EnvRecord,
    ModelState,
    Move,
    settled,
    state_of,
)
from reconciler.registry.base import Registry
from reconciler.registry.values import ActualState, RegisteredModel

DEFAULT_TTL = 120.0
DEFAULT_WAIT = 60.0
DEFAULT_SETTLE = 1.0
POLL_SECONDS = 2.0


class LeaseHeld(ReconcilerError):
    """Another apply holds a model's lease and did not release it in time."""


class LeaseLost(ReconcilerError):
    """Another apply took over a model's lease while this one was writing it (this one stalled
    past the expiry): the model and its records are theirs now."""


class Lease:
    """The leases of one apply on the models it writes. `acquire` (announcing the records each
    model gets if all lands), then per model either `released_by_records` once the audit records
    naming `token` are written, or `finish` (records and release in one write); `release` the
    rest."""

    def __init__(
        self,
        registry: Registry,
        holder: str,
        commit: str | None,
        *,
        ttl: float = DEFAULT_TTL,
        wait: float = DEFAULT_WAIT,
        settle: float = DEFAULT_SETTLE,
        on_wait: Callable[[str], None] = lambda _message: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        parallelism: int = 1,
        create: Collection[str] = (),
    ) -> None:
        self._registry = registry
        # Models a copy will be registered into that the registry may not have yet: leasing
        # one registers the model (empty until the copy lands).
        self._create = frozenset(create)
        self._holder = holder
        self._commit = commit
        self._ttl = ttl
        self._wait = wait
        self._settle = settle
        self._on_wait = on_wait
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._parallelism = parallelism
        self.token = uuid.uuid4().hex[:12]  # names this apply in the audit records it writes
        self._intents: dict[str, Mapping[str, EnvRecord]] = {}
        self._moves: dict[str, Mapping[str, Move]] = {}
        # Per held model, the environments a write may have gone out for: only those keep this
        # apply's commit as attempted when it gives the model up unrecorded.
        self._sent: dict[str, set[str]] = {}
        self._acquired = 0.0
        self._expires = 0.0
        self._states: dict[str, ModelState] = {}  # held models: their tag as we last wrote it
        self._locks: dict[str, threading.Lock] = {}
        self._renewing = threading.Lock()
        self._locks_guard = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether any model is still held (not released, finished or released by records)."""
        return bool(self._states)

    def acquire(
        self,
        models: Collection[str],
        read: Collection[str] = (),
        intents: Mapping[str, Mapping[str, EnvRecord]] | None = None,
        moves: Mapping[str, Mapping[str, Move]] | None = None,
    ) -> ActualState:
        """Lease every model in `models`, announcing `intents` (model: the records it gets when
        all its steps land and its audit records are written) and `moves` (model: what its steps
        put in place per environment); returns the registry as read to confirm it (every model's
        tags, all versions of `models` and `read`), for planning under the lease. A model whose
        state tag is unreadable is never leased (StateUnreadable): its lease cannot be judged."""
        self._intents = dict(intents or {})
        self._moves = dict(moves or {})
        wanted = sorted(set(models))
        full = set(wanted) | set(read)
        deadline = self._clock() + self._wait
        announced = False
        while True:
            actual = self._registry.read(wanted)
            check_readable(actual, wanted)
            now = self._clock()
            blocked = self._blocked(actual, wanted, now)
            if not blocked:
                self._write_all(actual, wanted, now)
                self._sleep(self._settle)
                actual = self._registry.read(full)
                now = self._clock()
                lost = [m for m in wanted if not self._ours(actual, m)]
                if not lost:
                    return actual
                # Lost a race on some: keep none of them (no hold-and-wait, no deadlock). The
                # ones lost hold the winner's record now: leave those alone.
                for model in lost:
                    self._states.pop(model, None)
                self._release_all()
                blocked = [(m, r) for m in lost if (r := lease_of(_model(actual, m))) is not None]
                if not blocked:
                    blocked = [(lost[0], None)]
            model, record = blocked[0]
            if now >= deadline:
                held_by = record.describe(now) if record else "another apply"
                raise LeaseHeld(
                    f"another apply is changing registered model {model!r} (lease held by "
                    f"{held_by}); gave up after waiting {round(self._wait)} s. Retry when it is "
                    "done, or `reconciler unlock` if that apply died."
                )
            if not announced and record is not None:
                self._on_wait(f"waiting for the lease on {model} held by {record.describe(now)}")
                announced = True
            pause = POLL_SECONDS * (0.5 + self._jitter())
            self._sleep(min(pause, max(0.0, deadline - now)))

    def renew_if_needed(self) -> None:
        """Called before each write (from any worker): push every held model's expiry out when
        half the lease has run. One place renews, under one lock."""
        with self._renewing:
            now = self._clock()
            if not self._states or self._expires - now >= self._ttl / 2:
                return
            self._expires = now + self._ttl

            def renew(model: str) -> None:
                with self._lock(model):
                    state = self._states.get(model)
                    if state is not None:
                        self._put(model, state.with_lease(self._record(model)))

            # Like taking them: `parallelism` at a time, since every writer waits meanwhile.
            errors = _each(renew, sorted(self._states), self._parallelism)
            if errors:
                # The write that follows meets the same registry and reports it as that change's
                # outcome; a renewal never aborts the apply (and its report) by itself.
                self._on_wait(f"could not renew the lease: {errors[0][1]}")

    def intent(self, model: str) -> Mapping[str, EnvRecord] | None:
        """The records announced for `model`, if its lease is held and announced any."""
        return self._intents.get(model) if model in self._states else None

    def announce(
        self,
        intents: Mapping[str, Mapping[str, EnvRecord]],
        moves: Mapping[str, Mapping[str, Move]] | None = None,
    ) -> None:
        """Announce these records instead (the plan made under the lease differs from the one
        the lease was taken for): one write per held model whose announcement changes."""
        moves = moves or {}
        for model in sorted(self._states):
            wanted = intents.get(model)
            if wanted == self._intents.get(model) and moves.get(model) == self._moves.get(model):
                continue
            with self._lock(model):
                state = self._states.get(model)
                if wanted is None:
                    self._intents.pop(model, None)
                else:
                    self._intents[model] = wanted
                if model in moves:
                    self._moves[model] = moves[model]
                else:
                    self._moves.pop(model, None)
                if state is not None:
                    self._states[model] = state.with_lease(self._record(model))
                    self._put(model, self._states[model])

    def sending(self, step: Step) -> None:
        """Called right before a write goes out for `step`: from here on, this apply's commit
        may have changed that environment, so giving the model up unrecorded leaves it as
        attempted there (a fence until an apply records that environment)."""
        with self._locks_guard:
            self._sent.setdefault(step.model, set()).add(step.environment)

    def _sent_to(self, model: str) -> set[str]:
        with self._locks_guard:
            return set(self._sent.get(model, ()))

    def released_by_records(self, model: str) -> None:
        """`model`'s audit records naming `token` are written for every announced environment:
        those records released it; never renew or release it again."""
        with self._lock(model):
            self._states.pop(model, None)

    def check_still_held(self, model: str, registered: RegisteredModel) -> None:
        """Raise LeaseLost unless the model's lease, as just read, is still ours."""
        record = lease_of(registered)
        if record is None or record.holder != self._holder:
            with self._lock(model):
                self._states.pop(model, None)  # theirs now: never released or recorded by us
            if state_of(registered).unreadable is not None:
                raise LeaseLost(
                    f"{model}: its reconciler.state tag became unreadable while this apply "
                    "wrote (a hand edit?); not verified and nothing recorded: its change stands. "
                    f"{state_of(registered).refusal(model)}"
                )
            if record is None:
                raise LeaseLost(
                    f"{model}: the lease was removed while this apply wrote (`reconciler unlock "
                    "--force`, or a hand edit); not verified and nothing recorded: its change "
                    "stands, and this commit fences older ones (an apply of it records it)"
                )
            raise LeaseLost(
                f"{model}: the lease was taken over by {record.holder} while this apply wrote "
                "(this apply stalled past the lease's expiry); not verified and nothing "
                "recorded, so that apply's changes and records stand"
            )

    def finish(self, model: str, updates: Mapping[str, EnvRecord]) -> None:
        """The bookkeeping write: record `updates` and release the model, in one tag write. An
        announced environment left out where a write went out (its step failed, or its outcome
        is unknown) keeps this apply's commit as attempted: it may have landed. One where
        nothing went out (conflicted, not attempted) is left as it was found."""
        with self._lock(model):
            state = self._states.get(model)
            if state is None:
                raise ReconcilerError(f"cannot record {model}: its lease is not held")
            self._put(model, self._unrecorded(model, state.recording(updates), updates))
            del self._states[model]

    def _unrecorded(
        self, model: str, state: ModelState, updates: Mapping[str, EnvRecord]
    ) -> ModelState:
        """`state` without the lease, with this apply's commit as attempted where a write went
        out and nothing was recorded."""
        sent = self._sent_to(model)
        intent = self._intents.get(model) or {}
        unfinished = {
            env: r.commit
            for env, r in intent.items()
            if env not in updates and env in sent and r.commit
        }
        return state.attempting(unfinished, self._moves.get(model) or {}).with_lease(None)

    def release(self) -> None:
        """Release every model still held (not finished), leaving records that are not ours."""
        if not self._states:
            return
        remaining = sorted(self._states)
        try:
            actual = self._registry.read(remaining)
        except ReconcilerError:
            actual = None

        def give_back(model: str) -> None:
            with self._lock(model):
                state = self._states.pop(model, None)
                if state is None:
                    return
                if actual is not None and not self._ours(actual, model):
                    return  # expired and taken by another apply meanwhile: theirs now
                # The tag as found, but for this apply's commit where a write of it went out.
                if actual is not None:
                    base = settled(_model(actual, model), self._sent_to(model))
                else:
                    base = self._unrecorded(model, state, {})
                self._put(model, base)

        errors = _each(give_back, remaining, self._parallelism)
        if errors:
            raise errors[0][1]

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.release()
        except ReconcilerError as error:
            # Never hide the apply's own outcome behind a failed release; expiry frees it.
            self._on_wait(f"could not release the lease (it expires by itself): {error}")

    # -- internals --

    def _blocked(
        self, actual: ActualState, models: list[str], now: float
    ) -> list[tuple[str, LeaseRecord | None]]:
        blocked: list[tuple[str, LeaseRecord | None]] = []
        for model in models:
            record = lease_of(_model(actual, model))
            if record is not None and record.holder != self._holder and not record.free(now):
                blocked.append((model, record))
        return blocked

    def _ours(self, actual: ActualState, model: str) -> bool:
        record = lease_of(_model(actual, model))
        return record is not None and record.holder == self._holder

    def _write_all(self, actual: ActualState, models: list[str], now: float) -> None:
        """Our record into every model's tag, `parallelism` writes at a time: one write after
        another would make taking 300 leases across a network the longest part of an apply.
        The order does not matter: races are settled by the confirming read, not by order."""
        self._acquired = now
        self._expires = now + self._ttl

        def put(model: str) -> None:
            # Over the tag as readers take it: records a finished apply's lease announced and
            # its audit records completed are kept, its lease dropped.
            state = state_of(_model(actual, model)).with_lease(self._record(model))
            self._put(model, state)
            with self._locks_guard:
                self._states[model] = state

        errors = _each(put, models, self._parallelism)
        if not errors:
            return
        self._release_all()
        denied = [model for model, error in errors if isinstance(error, RegistryPermissionDenied)]
        if denied:
            user = os.environ.get("MLFLOW_TRACKING_USERNAME")
            who = f"user {user!r}" if user else "these credentials"
            raise RegistryPermissionDenied(
                f"permission denied: {who} may not change registered model {denied[0]!r} "
                "(stages and aliases need write permission: EDIT in MLflow's basic-auth); "
                "nothing was changed"
            ) from None
        raise errors[0][1]

    def _release_all(self) -> None:
        states, self._states = self._states, {}

        def put(model: str) -> None:
            self._put(model, states[model].with_lease(None))

        _each(put, sorted(states), self._parallelism)  # what fails expires by itself

    def _record(self, model: str) -> dict[str, Any]:
        record: dict[str, Any] = asdict(
            LeaseRecord(
                self._holder,
                self._commit,
                self._acquired,
                self._expires,
                this_host(),
                os.getpid(),
            )
        )
        intent = self._intents.get(model)
        if intent:
            moves = self._moves.get(model) or {}
            record["apply"] = self.token
            record["pending"] = {
                env: {**r.to_dict(), **(moves[env].to_dict() if env in moves else {})}
                for env, r in sorted(intent.items())
            }
        return record

    def _put(self, model: str, state: ModelState) -> None:
        self._registry.set_model_tag(
            model, STATE_TAG, state.to_json(), create_model=model in self._create
        )

    def _lock(self, model: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(model, threading.Lock())


def _each(
    call: Callable[[str], None], models: list[str], parallelism: int
) -> list[tuple[str, ReconcilerError]]:
    """`call` for every model, `parallelism` at a time; the registry errors, by model name."""
    errors: list[tuple[str, ReconcilerError]] = []

    def one(model: str) -> None:
        try:
            call(model)
        except ReconcilerError as error:
            errors.append((model, error))

    if parallelism <= 1 or len(models) <= 1:
        for model in models:
            one(model)
    else:
        with ThreadPoolExecutor(min(parallelism, len(models))) as pool:
            list(pool.map(one, models))
    return sorted(errors, key=lambda found: found[0])


def _model(actual: ActualState | None, model: str) -> RegisteredModel | None:
    return actual.models.get(model) if actual is not None else None
