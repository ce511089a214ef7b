"""Gathers what the promotion policy looks at (run metrics, version tags, when a version
reached the required environment) and runs the rules over a plan."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.errors import (
    Problem,
)
from reconciler.pins.values import DesiredState, Environment
from reconciler.planning import policy
from reconciler.planning.steps import Plan
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag
from reconciler.registry.base import Registry
from reconciler.registry.values import ActualState, ModelVersion, RegisteredModel


def policy_problems(
    desired: DesiredState,
    plan: Plan,
    actual: ActualState,
    registry: Registry,
    now: datetime | None,
) -> list[Problem]:
    """Promotion order and gates, for every pin the plan changes (in-sync pins already serve)."""
    moment = now or datetime.now(UTC)
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
            required = desired.environments[env.requires]
            reached = reached_required(version, required, actual.models[pin.model])
        evidence = policy.Evidence(
            metrics=metrics or {},
            tags=version.tags,
            now=moment,
            arrival=reached,
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
    version: ModelVersion, required: Environment, registered: RegisteredModel
) -> policy.Arrival | None:
    """Whether and when `version` reached the `required` environment, by the registry alone: the
    audit records of applies there (the latest arrival starts the soak clock), or the version
    holding its stage or alias right now (then no time is known). A pin merely committed to the
    environment's folder proves nothing, and commit dates can be set by anyone."""
    records = audit.parse(version.tags.get(audit_tag(required.name)))
    arrivals = [
        when
        # An adoption is when reconciler first saw it serve there: a late but safe start.
        for when in (_time(r.time) for r in records if r.action in ("promote", "rollback", "adopt"))
        if when is not None
    ]
    if records:  # applied there (a retirement too: it was there to be retired)
        return policy.Arrival(max(arrivals) if arrivals else None)
    holds_stage = required.stage is not None and version.stage == required.stage
    holds_alias = (
        required.alias is not None and registered.aliases.get(required.alias) == version.version
    )
    if holds_stage or holds_alias:
        return policy.Arrival(None)
    return None


def _time(text: str) -> datetime | None:
    """An audit record's time; a hand-edited one without a zone or unreadable counts as unknown
    (the soak gate then says it cannot measure) rather than failing the plan."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
