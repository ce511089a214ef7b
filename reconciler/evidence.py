"""Gathers what the promotion policy looks at (run metrics, version tags, when a version
reached the required environment) and runs the rules over a plan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reconciler import audit, policy
from reconciler.bookkeeping import audit_tag
from reconciler.errors import (
    Problem,
)
from reconciler.gitrepo import PinChange
from reconciler.plan import Plan
from reconciler.registry.base import Registry
from reconciler.state import ActualState, DesiredState, ModelVersion


def policy_problems(
    desired: DesiredState,
    plan: Plan,
    actual: ActualState,
    registry: Registry,
    root: Path,
    now: datetime | None,
) -> list[Problem]:
    """Promotion order and gates, for every pin the plan changes (in-sync pins already serve)."""
    moment = now or datetime.now(UTC)
    histories: dict[str, list[PinChange]] = {}
    problems: list[Problem] = []
    for entry in plan.entries:
        pin = entry.pin
        env = desired.environments[pin.environment]
        if not entry.steps or not (env.requires or env.gates or pin.gates):
            continue
        if pin.version in entry.current:
            # It serves there already (drift around it is put right: an extra archived, an
            # alias moved onto it): nothing is promoted, so nothing is gated. An adopted
            # registry with a doubled stage plans cleanly.
            continue
        version = actual.models[pin.model].versions[pin.version]
        wants_metrics = any(g is not None and g.metrics for g in (env.gates, pin.gates))
        metrics = registry.run_metrics(version.run_id) if wants_metrics and version.run_id else None
        reached = None
        if env.requires:
            reached = reached_required(root, version, env.requires, histories)
        evidence = policy.Evidence(
            metrics=metrics or {},
            tags=version.tags,
            now=moment,
            reached_required=reached,
            has_run=metrics is not None or not wants_metrics,
        )
        # The environment's rules, then the pin's own gates, each named by where it is written.
        for gates, source, check_order in (
            (env.gates, env.settings_file or f"environments/{env.name}.yaml", True),
            (pin.gates, f"{pin.file} gates", False),
        ):
            problems += policy.check(
                file=pin.file,
                line=pin.version_line,
                model=pin.model,
                version=pin.version,
                requires=env.requires,
                gates=gates,
                rule_source=source,
                evidence=evidence,
                check_order=check_order,
            )
    return problems


def reached_required(
    root: Path, version: ModelVersion, requires: str, histories: dict[str, list[PinChange]]
) -> datetime | None:
    """When `version` first reached the `requires` environment: by the registry's audit records,
    else by the git history of that environment's pin."""
    records = audit.parse(version.tags.get(audit_tag(requires)))
    times = sorted(datetime.fromisoformat(r.time) for r in records)
    if times:
        return times[0]
    from reconciler.gitrepo import pin_history

    if version.model not in histories:
        histories[version.model] = pin_history(root, version.model)
    for change in histories[version.model]:
        if change.environment == requires and change.after == version.version:
            return change.date
    return None
