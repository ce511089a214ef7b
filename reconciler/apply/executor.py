"""Carries out a plan against a registry, one step at a time, highest environment first.

After a transport error the outcome of a write is unknown: MLflow may have applied a transition
whose answer was lost (DESIGN §6). The executor re-reads the model before deciding, and stops at
the first step it cannot confirm, since later steps build on earlier ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from reconciler.apply.copies import CopyDone
from reconciler.errors import InvalidInput, ReconcilerError, RegistryUnreachable
from reconciler.planning.steps import Entry, Plan, Retirement, Step
from reconciler.records.bookkeeping import Adoption, managed_tag
from reconciler.registry.base import Registry
from reconciler.registry.values import ARCHIVED, RegisteredModel

Outcome = Literal["applied", "failed", "unknown", "conflicted", "not_attempted"]


@dataclass(frozen=True)
class StepResult:
    step: Step
    outcome: Outcome
    error: str | None = None
    # Set when the write raised but a re-read showed it had taken effect.
    confirmed_after: str | None = None


@dataclass(frozen=True)
class ApplyReport:
    plan: Plan
    results: tuple[StepResult, ...]
    # Writes made after verification found the registry off the plan (another writer, a lost
    # race): archived extras, aliases set again.
    repairs: tuple[StepResult, ...] = ()
    # Records that could not be written after the changes (audit, applied commit): the changes
    # stand, but the next run's safety checks see less.
    bookkeeping_errors: tuple[str, ...] = ()
    # In-sync pins whose bookkeeping this apply recorded (adoption); nothing moved for them.
    adoptions: tuple[Adoption, ...] = ()
    # The signal that stopped the apply early (SIGINT, SIGTERM, SIGHUP), if any.
    interrupted: str | None = None
    # Versions copied from another registry (or found copied) before they were moved.
    copies: tuple[CopyDone, ...] = ()

    @property
    def failed(self) -> bool:
        outcomes = (*self.results, *self.repairs)
        return any(r.outcome != "applied" for r in outcomes) or bool(self.bookkeeping_errors)

    def records(self) -> list[dict[str, object]]:
        """One record per pin in the seed's shape (promote-model's output), versions as strings."""
        outcome = {id(r.step): r.outcome for r in self.results}
        adopted = {(a.environment, a.model) for a in self.adoptions}
        repairs: dict[tuple[str, str], list[str]] = {}
        for repair in self.repairs:
            key = (repair.step.environment, repair.step.model)
            repairs.setdefault(key, []).append(repair.step.describe())
        records = [
            _record(
                entry,
                # A step of a registry not reached (an earlier one failed) was not attempted.
                [outcome.get(id(s), "not_attempted") for s in entry.steps],
                repairs.get((entry.pin.environment, entry.pin.model), []),
                (entry.pin.environment, entry.pin.model) in adopted,
            )
            for entry in self.plan.entries
        ]
        copied = {(c.copy.environment, c.copy.model): c for c in self.copies}
        for record, entry in zip(records, self.plan.entries, strict=True):
            source = self.plan.source_of(entry.pin.environment, entry.pin.model)
            if source is not None:
                # `from:`: the version's number in its source registry, and whether this apply
                # copied it (the record's versions are this registry's).
                done = copied.get((entry.pin.environment, entry.pin.model))
                record["source"] = {
                    "environment": source.environment,
                    "registry": source.registry,
                    "version": source.version,
                    "copied": done.copied if done is not None else False,
                }
        for retirement in self.plan.retirements:
            if retirement.enabled:
                outcomes = [outcome[id(s)] for s in retirement.steps if id(s) in outcome]
                records.append(_retirement_record(retirement, outcomes))
        return records


def apply(
    plan: Plan,
    registry: Registry,
    before_each_write: Callable[[], None] = lambda: None,
    *,
    on_result: Callable[[StepResult], None] = lambda _result: None,
    after_model: Callable[[str, tuple[StepResult, ...]], None] = lambda _model, _results: None,
    parallelism: int = 1,
    stop: threading.Event | None = None,
    also: Collection[str] = (),
    on_send: Callable[[Step], None] = lambda _step: None,
) -> tuple[StepResult, ...]:
    """Write every step of `plan`, each only if the registry still looks as the plan saw it.

    Models are independent: each model's steps run in order (higher environments first), up to
    `parallelism` models at a time, and `after_model` (bookkeeping) runs as soon as a model's
    steps are done. A conflict (someone else moved that model) skips the model's remaining steps;
    any other failure starts no further model, since the outcome is unclear. `stop` (a signal)
    likewise lets the models in flight finish and starts no new one. Results come back in plan
    order whatever the parallelism; `on_result` sees each as it happens (streaming). Models in
    `also` have no steps but their `after_model` runs too (bookkeeping of an adoption).
    `on_send` is told right before each write goes out (what may have changed, for the lease).
    """
    if plan.problems:
        raise InvalidInput(plan.problems)
    by_model: dict[str, list[Step]] = {}
    for step in plan.steps:
        by_model.setdefault(step.model, []).append(step)
    for model in sorted(also):
        by_model.setdefault(model, [])
    halt = threading.Event()

    def run(model: str) -> tuple[StepResult, ...]:
        if halt.is_set() or (stop is not None and stop.is_set()):
            results = tuple(StepResult(step, "not_attempted") for step in by_model[model])
            for result in results:
                on_result(result)
            return results
        results = _run_model(by_model[model], registry, before_each_write, on_result, on_send)
        if any(r.outcome in ("failed", "unknown") for r in results):
            halt.set()
        after_model(model, results)
        return results

    done: dict[int, StepResult] = {}
    if parallelism <= 1 or len(by_model) <= 1:
        for model in by_model:
            done.update((id(r.step), r) for r in run(model))
    else:
        with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="apply") as pool:
            for results in pool.map(run, list(by_model)):
                done.update((id(r.step), r) for r in results)
    return tuple(done[id(step)] for step in plan.steps)


def _run_model(
    steps: list[Step],
    registry: Registry,
    before_each_write: Callable[[], None],
    on_result: Callable[[StepResult], None],
    on_send: Callable[[Step], None],
) -> tuple[StepResult, ...]:
    """One model's steps in order; after a conflict or failure the rest are not attempted (they
    build on the ones before)."""
    results: list[StepResult] = []
    for step in steps:
        if results and results[-1].outcome != "applied":
            result = StepResult(step, "not_attempted")
        else:
            before_each_write()
            result = _attempt(step, registry, on_send)
        results.append(result)
        on_result(result)
    return tuple(results)


def _attempt(step: Step, registry: Registry, on_send: Callable[[Step], None]) -> StepResult:
    try:
        current = _reread(step, registry)
    except ReconcilerError as error:
        return StepResult(step, "failed", f"not written: could not re-read it first: {error}")
    moved = precondition_changes(step, current)
    if moved:
        return StepResult(step, "conflicted", f"the registry changed since the plan: {moved}")
    # Ownership lives in the model's state tag, rewritten by the bookkeeping write after the
    # model's steps; only a record left by an earlier version needs its own delete.
    if step.kind == "disown" and (
        current is None or managed_tag(step.environment) not in current.tags
    ):
        return StepResult(step, "applied")
    on_send(step)
    try:
        _write(step, registry)
    except RegistryUnreachable as error:
        # No answer is not a no: look before deciding.
        try:
            current = registry.read_model(step.model)
        except ReconcilerError:
            return StepResult(step, "unknown", f"{error}; the registry could not be re-read")
        if step_holds(step, current):
            return StepResult(step, "applied", confirmed_after=str(error))
        return StepResult(step, "failed", str(error))
    except ReconcilerError as error:
        return StepResult(step, "failed", str(error))
    return StepResult(step, "applied")


# Steps whose compare-and-set needs only the versions' stages: one request instead of two.
_STAGE_KINDS = ("transition", "archive", "retire")


def _reread(step: Step, registry: Registry) -> RegisteredModel | None:
    """The model as the step's precondition needs it, read just before writing."""
    if step.kind in _STAGE_KINDS:
        versions = registry.read_versions(step.model)
        # No versions left: for a stage change that is the model gone.
        return RegisteredModel(step.model, versions, {}, {}) if versions else None
    return registry.read_model(step.model)


def precondition_changes(step: Step, model: RegisteredModel | None) -> str | None:
    """What differs between the registry now and what the plan expected before `step`."""
    if model is None:
        return f"registered model {step.model!r} is gone"
    for version, stage in step.expect:
        found = model.versions.get(version)
        now = found.stage if found else "deleted"
        if now != stage:
            return f"{step.model} v{version} is in {now}, the plan expected {stage}"
    if step.kind == "transition" and step.stage:
        others = [v for v in model.in_stage(step.stage) if v != step.version]
        if others != sorted(step.archives, key=int):
            shown = ", ".join(f"v{v}" for v in others) or "none"
            return (
                f"{step.model} {step.stage} holds {shown}, the plan expected {_vs(step.archives)}"
            )
    if step.kind in ("set_alias", "remove_alias") and (
        model.aliases.get(step.alias or "") != step.previous
    ):
        now_target = model.aliases.get(step.alias or "")
        was = f"v{step.previous}" if step.previous else "unset"
        is_now = f"v{now_target}" if now_target else "unset"
        return f"{step.model}@{step.alias} is {is_now}, the plan expected {was}"
    return None


def _vs(versions: tuple[str, ...]) -> str:
    return ", ".join(f"v{v}" for v in versions) or "none"


def step_holds(step: Step, model: RegisteredModel | None) -> bool:
    """Whether the registry shows the effect of `step` (used after a write of unknown outcome)."""
    if model is None:
        return False
    if step.kind == "set_alias":
        return model.aliases.get(step.alias or "") == step.version
    if step.kind == "remove_alias":
        return (step.alias or "") not in model.aliases
    if step.kind == "disown":
        return managed_tag(step.environment) not in model.tags
    version = model.versions.get(step.version)
    if version is None:
        return False
    if step.kind in ("archive", "retire"):
        return version.stage == ARCHIVED
    return version.stage == step.stage and all(
        model.versions[v].stage != step.stage for v in step.archives if v in model.versions
    )


def _write(step: Step, registry: Registry) -> None:
    if step.kind == "transition":
        assert step.stage is not None
        # One call archives the previous holders with the move (the seed's atomic promotion).
        registry.transition_stage(step.model, step.version, step.stage, archive_existing=True)
    elif step.kind in ("archive", "retire"):
        # Never archive_existing towards Archived: MLflow answers 500 and retries for minutes.
        registry.transition_stage(step.model, step.version, ARCHIVED, archive_existing=False)
    elif step.kind == "set_alias":
        assert step.alias is not None
        registry.set_alias(step.model, step.alias, step.version)
    elif step.kind == "remove_alias":
        assert step.alias is not None
        registry.delete_alias(step.model, step.alias)
    else:  # disown
        registry.delete_model_tag(step.model, managed_tag(step.environment))


def _record(
    entry: Entry, outcomes: list[Outcome], repairs: list[str], adopted: bool = False
) -> dict[str, object]:
    archived: list[str] = []
    for step in entry.steps:
        archived.extend(step.archives if step.kind == "transition" else ())
        if step.kind == "archive":
            archived.append(step.version)
    return {
        "model_name": entry.pin.model,
        "environment": entry.pin.environment,
        "new_version": entry.pin.version,
        # The stage, or `@alias` for alias-only environments (MLflow's models:/name@alias form).
        "new_stage": entry.target.split(" + ")[0],
        "archived_version": archived[0] if archived else None,
        "archived_versions": archived,
        "promoted": bool(outcomes) and all(o == "applied" for o in outcomes),
        "already_promoted": not entry.steps,
        "promoted_onward_to": entry.onward_to,
        "outcome": _entry_outcome(outcomes),
        "repairs": repairs,
        "retired": False,
        # In sync already, and this apply recorded its applied commit and ownership (adoption).
        "adopted": adopted,
    }


def _retirement_record(retirement: Retirement, outcomes: list[Outcome]) -> dict[str, object]:
    archived = [s.version for s in retirement.steps if s.kind == "retire"]
    return {
        "model_name": retirement.model,
        "environment": retirement.environment,
        "new_version": None,
        "new_stage": ARCHIVED,
        "archived_version": archived[0] if archived else None,
        "archived_versions": archived,
        "promoted": False,
        "already_promoted": False,
        "promoted_onward_to": None,
        "outcome": _entry_outcome(outcomes),
        "repairs": [],
        "retired": bool(outcomes) and all(o == "applied" for o in outcomes),
        "adopted": False,
    }


def _entry_outcome(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "in_sync"
    for outcome in ("failed", "unknown", "conflicted", "not_attempted"):
        if outcome in outcomes:
            return outcome
    return "applied"
