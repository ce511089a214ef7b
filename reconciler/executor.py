"""Carries out a plan against a registry, one step at a time, highest environment first.

After a transport error the outcome of a write is unknown: MLflow may have applied a transition
whose answer was lost (DESIGN §6). The executor re-reads the model before deciding, and stops at
the first step it cannot confirm, since later steps build on earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from reconciler.errors import InvalidInput, ReconcilerError, RegistryUnreachable
from reconciler.plan import Entry, Plan, Step
from reconciler.registry.base import Registry
from reconciler.state import ARCHIVED, ActualState

Outcome = Literal["applied", "failed", "unknown", "not_attempted"]


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

    @property
    def failed(self) -> bool:
        return any(r.outcome != "applied" for r in (*self.results, *self.repairs))

    def records(self) -> list[dict[str, object]]:
        """One record per pin in the seed's shape (promote-model's output), versions as strings."""
        outcome = {id(r.step): r.outcome for r in self.results}
        repairs: dict[tuple[str, str], list[str]] = {}
        for repair in self.repairs:
            key = (repair.step.environment, repair.step.model)
            repairs.setdefault(key, []).append(repair.step.describe())
        return [
            _record(
                entry,
                [outcome[id(s)] for s in entry.steps],
                repairs.get((entry.pin.environment, entry.pin.model), []),
            )
            for entry in self.plan.entries
        ]


def apply(
    plan: Plan,
    registry: Registry,
    before_each_write: Callable[[], None] = lambda: None,
) -> tuple[StepResult, ...]:
    """Write every step of `plan`; stop at the first step not confirmed applied."""
    if plan.problems:
        raise InvalidInput(plan.problems)
    results: list[StepResult] = []
    stopped = False
    for step in plan.steps:
        if stopped:
            results.append(StepResult(step, "not_attempted"))
            continue
        before_each_write()
        result = _attempt(step, registry)
        results.append(result)
        stopped = result.outcome != "applied"
    return tuple(results)


def _attempt(step: Step, registry: Registry) -> StepResult:
    try:
        _write(step, registry)
    except RegistryUnreachable as error:
        # No answer is not a no: look before deciding.
        try:
            actual = registry.read([step.model])
        except ReconcilerError:
            return StepResult(step, "unknown", f"{error}; the registry could not be re-read")
        if step_holds(step, actual):
            return StepResult(step, "applied", confirmed_after=str(error))
        return StepResult(step, "failed", str(error))
    except ReconcilerError as error:
        return StepResult(step, "failed", str(error))
    return StepResult(step, "applied")


def step_holds(step: Step, actual: ActualState) -> bool:
    """Whether the registry shows the effect of `step` (used after a write of unknown outcome)."""
    model = actual.models.get(step.model)
    if model is None:
        return False
    if step.kind == "set_alias":
        return model.aliases.get(step.alias or "") == step.version
    version = model.versions.get(step.version)
    if version is None:
        return False
    if step.kind == "archive":
        return version.stage == ARCHIVED
    return version.stage == step.stage and all(
        model.versions[v].stage != step.stage for v in step.archives if v in model.versions
    )


def _write(step: Step, registry: Registry) -> None:
    if step.kind == "transition":
        assert step.stage is not None
        # One call archives the previous holders with the move (the seed's atomic promotion).
        registry.transition_stage(step.model, step.version, step.stage, archive_existing=True)
    elif step.kind == "archive":
        # Never archive_existing towards Archived: MLflow answers 500 and retries for minutes.
        registry.transition_stage(step.model, step.version, ARCHIVED, archive_existing=False)
    else:
        assert step.alias is not None
        registry.set_alias(step.model, step.alias, step.version)


def _record(entry: Entry, outcomes: list[Outcome], repairs: list[str]) -> dict[str, object]:
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
    }


def _entry_outcome(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "in_sync"
    for outcome in ("failed", "unknown", "not_attempted"):
        if outcome in outcomes:
            return outcome
    return "applied"
