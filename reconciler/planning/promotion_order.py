"""The promotion order: which environment a version reaches first. Pure.

An environment comes after the one it `requires`; production, without `requires`, comes after
staging (as `promote` reads it). Otherwise lower environments first: alias-only ones, then
Staging, then Production, by name. CI applies environments in this order
(.github/workflows/reconcile.yml reads it from `validate --format json`).
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.pins.values import DesiredState, Environment


def promotion_order(desired: DesiredState) -> list[Environment]:
    environments = desired.environments
    before = {name: _predecessor(env, environments) for name, env in environments.items()}
    # Lowest first: the reverse of the apply rank (Production 0, Staging 1, alias-only 2).
    pending = sorted(environments.values(), key=lambda env: (-env.rank[0], env.name))
    ordered: list[Environment] = []
    placed: set[str] = set()
    while pending:
        ready = next((env for env in pending if before[env.name] in placed | {None}), None)
        # A cycle is a validation error elsewhere; here it must not loop forever.
        chosen = ready or pending[0]
        ordered.append(chosen)
        placed.add(chosen.name)
        pending.remove(chosen)
    return ordered


def _predecessor(env: Environment, environments: Mapping[str, Environment]) -> str | None:
    if env.requires and env.requires in environments and env.requires != env.name:
        return env.requires
    if env.name == "production" and "staging" in environments and env.requires is None:
        return "staging"
    return None
