"""What happens after a model's steps, in the worker that ran them: verify and repair it, then
write its audit records (which release its lease when all landed as announced)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from reconciler.apply import executor, recording
from reconciler.apply.executor import StepResult
from reconciler.apply.lease import Lease, LeaseLost
from reconciler.apply.options import ApplyOptions
from reconciler.errors import ApplyFailed, InvalidInput, ReconcilerError
from reconciler.pins.values import DesiredState
from reconciler.planning.scope import Scope
from reconciler.planning.steps import Plan
from reconciler.records.bookkeeping import Adoption
from reconciler.registry.base import Registry
from reconciler.registry.values import ActualState

MAX_REPAIR_ROUNDS = 3


@dataclass(frozen=True)
class Planned:
    """An apply's plan as made under the lease, with what it was made from: the pins, the read
    that confirmed the lease, the in-sync pins to record, the scope, and this repository."""

    desired: DesiredState
    plan: Plan
    actual: ActualState
    adoptions: tuple[Adoption, ...]
    scope: Scope
    owner: str
    # Environments of the repository in other registries: never retired here (planning/steps).
    elsewhere: frozenset[str] = frozenset()


class ModelRun:
    """What happens after a model's steps, in the worker that ran them: verify and repair it,
    then write its audit records (releasing its lease when all landed as announced, else with
    one bookkeeping write of what landed)."""

    def __init__(
        self, planned: Planned, registry: Registry, lease: Lease, options: ApplyOptions
    ) -> None:
        self.planned = planned
        self.registry = registry
        self.lease = lease
        self.options = options
        self.repairs: list[StepResult] = []
        self.bookkeeping_errors: list[str] = []
        self.recorded: set[tuple[str, str]] = set()
        self.error: ReconcilerError | None = None
        self._lock = threading.Lock()

    def after_model(self, model: str, results: tuple[StepResult, ...]) -> None:
        repairs: tuple[StepResult, ...] = ()
        error: ReconcilerError | None = None
        problem_before = None
        if results and all(r.outcome == "applied" for r in results):
            # A model someone else moved under us (conflicted) is theirs until the next run.
            try:
                repairs = self._verify_and_repair(model)
            except LeaseLost as lost:
                with self._lock:
                    self.bookkeeping_errors.append(str(lost))
                return
            except (ApplyFailed, InvalidInput) as raised:
                error = raised
            except ReconcilerError as unreadable:
                # The changes landed; that they still hold could not be checked: say so.
                problem_before = f"{model}: could not verify it after writing: {unreadable}"
        mine = [a for a in self.planned.adoptions if a.model == model]
        planned = self.planned
        writes = recording.model_writes(
            model,
            planned.plan,
            planned.actual,
            (*results, *repairs),
            mine,
            self.options,
            planned.owner,
            self.lease.token,
        )
        # All landed as announced: the audit records, naming the lease, release it.
        by_audits = writes.released_by_audits and writes.updates == self.lease.intent(model)
        problem = None
        try:
            for name, version, key, value in writes.audits:
                self.registry.set_version_tag(name, version, key, value)
            if by_audits:
                self.lease.released_by_records(model)
            else:
                self.lease.finish(model, writes.updates)
        except ReconcilerError as failed:
            # The changes are made: report them, and say what could not be recorded.
            problem = f"{model}: {failed}"
        with self._lock:
            self.repairs.extend(repairs)
            if problem_before is not None:
                self.bookkeeping_errors.append(problem_before)
            if problem is not None:
                self.bookkeeping_errors.append(problem)
            else:
                self.recorded.update((a.environment, a.model) for a in mine)
            if error is not None and self.error is None:
                self.error = error

    def _verify_and_repair(self, model: str) -> tuple[StepResult, ...]:
        """Re-read the model; fix what another writer or a lost race left behind (a second
        version in a stage, an alias moved away)."""
        repairs: list[StepResult] = []
        for _round in range(MAX_REPAIR_ROUNDS):
            registered = self.registry.read_model(model)
            if registered is not None:
                # Repairing or recording a model another apply took over would undo its newer
                # change and put back an older fence.
                self.lease.check_still_held(model, registered)
            now = ActualState({model: registered} if registered is not None else {})
            planned = self.planned
            again = planned.scope.diff(planned.desired, now, planned.owner, models=[model])
            again = again.without_retirements_in(planned.elsewhere)
            if again.problems:
                raise InvalidInput(again.problems)
            # Ownership is dropped by the bookkeeping write that follows: not a repair.
            if all(step.kind == "disown" for step in again.steps):
                return tuple(repairs)
            results = executor.apply(
                again,
                self.registry,
                before_each_write=self.lease.renew_if_needed,
                on_send=self.lease.sending,
            )
            repairs.extend(results)
            if any(r.outcome != "applied" for r in results):
                return tuple(repairs)
        raise ApplyFailed(
            f"the registry still differs from the pins after {MAX_REPAIR_ROUNDS} repair rounds: "
            f"something else keeps changing {model}"
        )
