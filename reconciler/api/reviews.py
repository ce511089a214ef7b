"""What a reviewer needs to judge each change: metrics of both versions (a copied version's
from its source registry), creator, links to the MLflow UI, the policy rules passed."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.api.planning import SitePlan
from reconciler.pins.values import DesiredState
from reconciler.planning import evidence, policy
from reconciler.planning.figures import VersionMetrics
from reconciler.planning.review import (
    Review,
    VersionFacts,
    figures,
    metric_rows,
    ui_base,
    version_link,
)
from reconciler.registry.values import ModelVersion

Rows = list[tuple[str, str | None]]  # (metric key, dataset) of a review's metric rows


def reviews(
    desired: DesiredState, planned: SitePlan, base: str | None
) -> dict[tuple[str, str], Review]:
    """A review of each change in one site's plan. A copied version is shown as its source:
    its metrics, creator and link are the source registry's (the copy has no evidence of its
    own), its number there beside the copy's."""
    plan, actual, registry = planned.plan, planned.actual, planned.site.registry
    changed = [e for e in plan.entries if e.steps and e.pin.version not in e.current]
    # A copied version is shown as its source: (version there, its UI, its workspace, metrics).
    sourced: dict[tuple[str, str], _Shown] = {}
    for entry in changed:
        source = plan.source_of(entry.pin.environment, entry.pin.model)
        if source is None:
            continue
        site, side = planned.sources[source.environment]
        there = side.actual.models[entry.pin.model].versions[source.version]
        read = evidence.read_metrics(site.registry, [there])
        sourced[(entry.pin.environment, entry.pin.model)] = _Shown(
            there,
            source.label(),
            version_link(
                ui_base(site.registry.describe()), there.model, there.version, site.workspace.name
            ),
            read.get((there.model, there.version), VersionMetrics()),
        )
    # Every version a review shows, its metrics read in one batch (logged models) or per run.
    metrics = evidence.read_metrics(
        registry,
        [
            found
            for entry in changed
            for number in (entry.pin.version, *entry.current)
            if (found := actual.models[entry.pin.model].versions.get(number)) is not None
        ],
    )

    def metrics_of(model: str, number: str, shown_as: _Shown | None) -> VersionMetrics:
        if shown_as is not None:
            return shown_as.metrics
        return metrics.get((model, number), VersionMetrics())

    def facts(
        model: str, number: str, rows: Rows, gated: Rows, shown_as: _Shown | None = None
    ) -> VersionFacts:
        version: ModelVersion | None = actual.models[model].versions.get(number)
        link = version_link(base, model, number, plan.workspace.name)
        label = number
        if shown_as is not None:
            version, link, label = shown_as.version, shown_as.link, shown_as.label
        shown = figures(rows, metrics_of(model, number, shown_as), gated)
        return VersionFacts(
            version=label,
            metrics={name: figure.value for name, figure in shown.items()},
            created=version.created if version else None,
            creator=version.creator if version else None,
            link=link,
            origins={name: figure.origin() for name, figure in shown.items()},
        )

    found_reviews = {}
    for entry in changed:
        pin = entry.pin
        env = desired.environments[pin.environment]
        rules = policy.rules(env.requires, env.gates) + policy.rules(None, pin.gates)
        bounds = [bound for gates in (env.gates, pin.gates) if gates for bound in gates.metrics]
        gated = [(bound.name, bound.dataset) for bound in bounds]
        shown_as = sourced.get((pin.environment, pin.model))
        rows = metric_rows(
            gated,
            [metrics_of(pin.model, pin.version, shown_as)]
            + [metrics_of(pin.model, number, None) for number in entry.current],
        )
        found_reviews[(pin.environment, pin.model)] = Review(
            new=facts(pin.model, pin.version, rows, gated, shown_as),
            old=tuple(facts(pin.model, v, rows, gated) for v in entry.current),
            policy=tuple(rules),
            gated_metrics=tuple(dict.fromkeys(bound.label for bound in bounds)),
        )
    return found_reviews


@dataclass(frozen=True)
class _Shown:
    """A copied version as its review shows it: the source's version, label, link, metrics."""

    version: ModelVersion
    label: str
    link: str | None
    metrics: VersionMetrics
