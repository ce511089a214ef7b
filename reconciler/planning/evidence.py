"""Gathers what the promotion policy looks at (metrics of a version's logged model or run,
version tags, when a version reached the required environment) and runs the rules over a plan."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.errors import (
    Problem,
)
from reconciler.pins.values import DesiredState, Environment, Pin
from reconciler.planning import policy
from reconciler.planning.figures import VersionMetrics
from reconciler.planning.steps import Plan
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag
from reconciler.registry.base import Registry
from reconciler.registry.values import ActualState, ModelVersion, RegisteredModel


@dataclass(frozen=True)
class SourceEvidence:
    """For a pin with `from:`: the version it names in its source registry, whose evidence
    (metrics, tags, audit records of the environments it passed) the policy judges."""

    version: ModelVersion
    registered: RegisteredModel
    registry: Registry


def policy_problems(
    desired: DesiredState,
    plan: Plan,
    actual: ActualState,
    registry: Registry,
    now: datetime | None,
    sources: Mapping[tuple[str, str], SourceEvidence] | None = None,
    here: Collection[str] | None = None,
    orphans: Collection[tuple[str, str]] = (),
) -> list[Problem]:
    """Promotion order and gates, for every pin the plan changes (in-sync pins already serve).
    A pin with `from:` (in `sources`) is judged on its source version, in its source registry.
    `here`: the environments in this registry (None: all); a pin whose `requires` lives in
    another registry must name its version there (`from:`), or its order cannot be checked."""
    moment = now or datetime.now(UTC)
    sources = sources or {}
    problems: list[Problem] = []
    gated: list[_Judged] = []
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
        key = (pin.environment, pin.model)
        source = sources.get(key)
        if key in orphans:
            problems += _orphan(pin, env, actual.models[pin.model].versions[pin.version])
        elif source is not None:
            shown = f"{source.version.version} (from {pin.source})"
            gated.append(
                _Judged(pin, env, source.version, source.registered, source.registry, shown)
            )
        elif here is not None and env.requires and env.requires not in here:
            problems.append(
                Problem(
                    pin.file,
                    pin.version_line,
                    "version",
                    f"policy: {env.name} requires {env.requires}, whose models live in another "
                    f"registry: name {env.requires}'s version here with `from: {env.requires}` "
                    "(its evidence is there)",
                )
            )
        else:
            registered = actual.models[pin.model]
            version = registered.versions[pin.version]
            gated.append(_Judged(pin, env, version, registered, registry, pin.version))
    # Metrics only for versions a metric gate judges: one batch per registry read.
    metrics: dict[tuple[int, str, str], VersionMetrics] = {}
    for where in {id(j.registry): j.registry for j in gated}.values():
        read = read_metrics(where, [j.version for j in gated if j.registry is where and j.metered])
        metrics.update({(id(where), *key): found for key, found in read.items()})
    for judged in gated:
        version = judged.version
        found = metrics.get((id(judged.registry), version.model, version.version))
        problems += judged.check(desired, found or VersionMetrics(), moment)
    return problems


@dataclass(frozen=True)
class _Judged:
    """A changed pin and the version its policy is judged on: this registry's, or its source's
    in another registry (`shown` then says so: `15 (from staging)`)."""

    pin: Pin
    env: Environment
    version: ModelVersion
    registered: RegisteredModel
    registry: Registry
    shown: str

    @property
    def metered(self) -> bool:
        return any(g is not None and g.metrics for g in (self.env.gates, self.pin.gates))

    def check(
        self, desired: DesiredState, metrics: VersionMetrics, moment: datetime
    ) -> list[Problem]:
        pin, env = self.pin, self.env
        reached = None
        if env.requires:
            required = desired.environments[env.requires]
            reached = reached_required(self.version, required, self.registered)
        evidence = policy.Evidence(
            metrics=metrics, tags=self.version.tags, now=moment, arrival=reached
        )
        problems: list[Problem] = []
        # The environment's rules, then the pin's own gates, each named by where it is written.
        for gates, rules_in, check_order in (
            (env.gates, env.settings_file or f"environments/{env.name}.yaml", True),
            (pin.gates, f"{pin.file} gates", False),
        ):
            problems += policy.check(
                file=pin.file,
                line=pin.version_line,
                model=pin.model,
                version=self.shown,
                requires=env.requires,
                gates=gates,
                rule_source=rules_in,
                evidence=evidence,
                check_order=check_order,
            )
        return problems


def _orphan(pin: Pin, env: Environment, copy: ModelVersion) -> list[Problem]:
    """A copy whose source version is gone: its evidence is gone with it. It may serve again
    where it served before (a rollback to a version that once passed); nowhere new."""
    if audit.parse(copy.tags.get(audit_tag(env.name))):
        return []
    return [
        Problem(
            pin.file,
            pin.version_line,
            "version",
            f"policy: the version this pin names is gone from {pin.source}'s registry, so its "
            f"gates and promotion order cannot be judged; its copy here (v{copy.version}) never "
            f"served in {env.name}, so it is no rollback either",
        )
    ]


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
