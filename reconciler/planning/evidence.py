"""Gathers what the promotion policy looks at (metrics of a version's logged model or run,
version tags, when a version reached the required environment) and runs the rules over a plan."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from reconciler.errors import (
    Problem,
)
from reconciler.pins.values import DesiredState, Environment
from reconciler.planning import policy
from reconciler.planning.figures import VersionMetrics
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
    gated = []
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
        gated.append((pin, env, actual.models[pin.model].versions[pin.version]))
    # Metrics only for versions a metric gate judges, their logged models in one batch.
    metrics = read_metrics(
        registry,
        [
            version
            for pin, env, version in gated
            if any(g is not None and g.metrics for g in (env.gates, pin.gates))
        ],
    )
    for pin, env, version in gated:
        reached = None
        if env.requires:
            required = desired.environments[env.requires]
            reached = reached_required(version, required, actual.models[pin.model])
        evidence = policy.Evidence(
            metrics=metrics.get((version.model, version.version), VersionMetrics()),
            tags=version.tags,
            now=moment,
            arrival=reached,
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


def read_metrics(
    registry: Registry, versions: Iterable[ModelVersion]
) -> dict[tuple[str, str], VersionMetrics]:
    """Where each version's metrics are read, by (model, version): the LoggedModel it was
    registered from (all of them in one batch), else its run."""
    versions = list(versions)
    rows = registry.logged_model_metrics(
        sorted({v.model_id for v in versions if v.model_id is not None})
    )
    found = {}
    for version in versions:
        if version.model_id is not None:
            read = VersionMetrics(version.model_id, rows.get(version.model_id))
        else:
            run = registry.run_metrics(version.run_id) if version.run_id else None
            read = VersionMetrics(run=run)
        found[(version.model, version.version)] = read
    return found


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
