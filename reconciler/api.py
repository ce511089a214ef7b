"""What the commands do, without the command line: validate, plan, apply."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconciler import executor
from reconciler.desired import load_desired_state
from reconciler.errors import InvalidInput, UsageError
from reconciler.executor import ApplyReport
from reconciler.plan import Plan, diff
from reconciler.registry.base import Registry
from reconciler.state import DesiredState


def validate(root: Path, paths: Sequence[Path] = ()) -> DesiredState:
    """Offline checks of pins and settings; raises InvalidInput with every problem."""
    return load_desired_state(root, paths)


def make_plan(
    root: Path,
    registry: Registry,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
) -> Plan:
    """Validate everything, read the registry once, and diff the scope asked for."""
    desired = load_desired_state(root)
    _check_filters(desired, environments, models)
    pinned_models = {pin.model for pin in desired.pins}
    actual = registry.read(pinned_models)
    plan = diff(
        desired,
        actual,
        environments=environments or None,
        models=models or None,
    )
    if plan.problems:
        raise InvalidInput(plan.problems)
    return plan


def apply(
    root: Path,
    registry: Registry,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
) -> ApplyReport:
    """Plan, then write; a plan with any problem writes nothing."""
    plan = make_plan(root, registry, environments, models)
    return executor.apply(plan, registry)


def _check_filters(
    desired: DesiredState, environments: Sequence[str], models: Sequence[str]
) -> None:
    unknown_envs = sorted(set(environments) - set(desired.environments))
    if unknown_envs:
        known = ", ".join(sorted(desired.environments)) or "none"
        raise UsageError(f"--env {unknown_envs[0]!r}: no such environment (have: {known})")
    pinned = {pin.model for pin in desired.pins}
    unknown_models = sorted(set(models) - pinned)
    if unknown_models:
        raise UsageError(f"--model {unknown_models[0]!r}: no pin names this model")
