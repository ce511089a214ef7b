"""Carries out a plan against a registry, one step at a time, highest environment first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reconciler.errors import InvalidInput, ReconcilerError
from reconciler.plan import Entry, Plan, Step
from reconciler.registry.base import Registry
from reconciler.state import ARCHIVED

Outcome = Literal["applied", "failed", "not_attempted"]


@dataclass(frozen=True)
class StepResult:
    step: Step
    outcome: Outcome
    error: str | None = None


@dataclass(frozen=True)
class ApplyReport:
    plan: Plan
    results: tuple[StepResult, ...]

    @property
    def failed(self) -> bool:
        return any(r.outcome != "applied" for r in self.results)

    def records(self) -> list[dict[str, object]]:
        """One record per pin in the seed's shape (promote-model's output), versions as strings."""
        outcome = {id(r.step): r.outcome for r in self.results}
        return [
            _record(entry, [outcome[id(s)] for s in entry.steps]) for entry in self.plan.entries
        ]


def apply(plan: Plan, registry: Registry) -> ApplyReport:
    """Write every step of `plan`; stop at the first failure (later steps would build on it)."""
    if plan.problems:
        raise InvalidInput(plan.problems)
    results: list[StepResult] = []
    failed = False
    for step in plan.steps:
        if failed:
            results.append(StepResult(step, "not_attempted"))
            continue
        try:
            _write(step, registry)
        except ReconcilerError as error:
            failed = True
            results.append(StepResult(step, "failed", str(error)))
        else:
            results.append(StepResult(step, "applied"))
    return ApplyReport(plan, tuple(results))


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


def _record(entry: Entry, outcomes: list[Outcome]) -> dict[str, object]:
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
    }


def _entry_outcome(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return "in_sync"
    if all(o == "applied" for o in outcomes):
        return "applied"
    if any(o == "failed" for o in outcomes):
        return "failed"
    return "not_attempted"
