"""What one command looks at: `--env`, `--model` and `--prune`, as one value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.errors import UsageError
from reconciler.pins.values import DesiredState
from reconciler.planning.plan import diff
from reconciler.planning.steps import Plan
from reconciler.registry.values import ActualState


@dataclass(frozen=True)
class Scope:
    """Environments and models to plan (empty: all), and whether removed pins are retired."""

    environments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    prune: bool = False

    @classmethod
    def of(
        cls, environments: Iterable[str] = (), models: Iterable[str] = (), prune: bool = False
    ) -> Scope:
        return cls(tuple(environments), tuple(models), prune)

    def check(self, desired: DesiredState) -> None:
        """A filter that names nothing is a usage error, not an empty plan."""
        self.check_environments(desired)
        self.check_models(desired)

    def check_environments(self, desired: DesiredState) -> None:
        unknown_envs = sorted(set(self.environments) - set(desired.environments))
        if unknown_envs:
            known = ", ".join(sorted(desired.environments)) or "none"
            raise UsageError(f"--env {unknown_envs[0]!r}: no such environment (have: {known})")

    def check_models(self, desired: DesiredState, plan: Plan | None = None) -> None:
        """Each `--model` names a pin; given the plan, a model it retires counts too (its pin
        was removed: the retirement is what `plan --model` is asked to show)."""
        named = {pin.model for pin in desired.pins}
        if plan is not None:
            named |= {retirement.model for retirement in plan.retirements}
        unknown_models = sorted(set(self.models) - named)
        if unknown_models:
            nowhere = (
                ", and this repository manages it nowhere in scope (nothing to retire)"
                if plan
                else ""
            )
            raise UsageError(f"--model {unknown_models[0]!r}: no pin names this model{nowhere}")

    def diff(
        self,
        desired: DesiredState,
        actual: ActualState,
        owner: str | None = None,
        models: Iterable[str] | None = None,
    ) -> Plan:
        """`plan.diff` over this scope; `models` narrows it further (one model's repair)."""
        narrowed = list(models) if models is not None else list(self.models)
        return diff(desired, actual, self.environments or None, narrowed or None, self.prune, owner)


EVERYTHING = Scope()
