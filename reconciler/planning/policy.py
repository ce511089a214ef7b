"""Promotion policy: the order of environments and the gates a version must pass. Pure.

The API gathers the evidence (metrics of the version's logged model or run, version tags, when
the version reached the required environment); `check` turns a failing rule into a plan problem
that says which rule, which value, and what would pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.errors import Problem
from reconciler.pins.gates import Gates, MetricBound
from reconciler.planning.figures import Figure, Miss, VersionMetrics

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def soak_seconds(text: str) -> int:
    return int(text[:-1]) * _UNITS[text[-1]]


@dataclass(frozen=True)
class Arrival:
    """The version reached the required environment, by the registry: at `time` (the latest
    audit record of an apply there), or at a time unknown (it holds the stage or alias now, put
    there by other means)."""

    time: datetime | None


@dataclass(frozen=True)
class Evidence:
    """What the rules look at for one pinned version."""

    metrics: VersionMetrics
    tags: Mapping[str, str]
    now: datetime
    # Promotion order: whether and when the version reached the required environment.
    arrival: Arrival | None = None


def check(
    *,
    file: str,
    line: int,
    model: str,
    version: str,
    requires: str | None,
    gates: Gates | None,
    rule_source: str,
    evidence: Evidence,
    check_order: bool = True,
) -> list[Problem]:
    """Every rule `version` fails, as problems at the pin's `version` line. `requires` names the
    environment the version must have passed (checked when `check_order`; soak is measured
    there)."""
    failures: list[str] = []
    subject = f"{model} v{version}"
    if check_order and requires and evidence.arrival is None:
        failures.append(
            f"{subject} was never applied to {requires} (no audit record of an apply there, and "
            f"{requires} does not hold it now); promote it through {requires} first (requires: "
            f"{requires} in {rule_source})"
        )
    if gates is not None:
        failures.extend(_metric_failures(subject, gates, evidence, rule_source))
        for key, wanted in gates.tags:
            actual = evidence.tags.get(key)
            shown = "missing" if actual is None else repr(actual)
            if actual != wanted:
                failures.append(
                    f"{subject} tag {key} is {shown}; gate in {rule_source} needs {wanted!r}"
                )
        if gates.soak and requires and evidence.arrival is not None:
            failures.extend(_soak_failures(subject, gates.soak, requires, evidence, rule_source))
    return [Problem(file, line, "version", f"policy: {failure}") for failure in failures]


def _soak_failures(
    subject: str, soak: str, requires: str, evidence: Evidence, rule_source: str
) -> list[str]:
    """Soak runs from the registry's audit record of the apply, never from commit dates."""
    since = evidence.arrival.time if evidence.arrival else None
    if since is None:
        return [
            f"{subject} has no audit record of an apply to {requires}, so its soak time cannot "
            f"be measured; soak gate in {rule_source} needs {soak}: apply it to {requires} "
            "with reconciler and wait"
        ]
    needed = timedelta(seconds=soak_seconds(soak))
    soaked = evidence.now - since
    if soaked >= needed:
        return []
    ready = (since + needed).isoformat(timespec="minutes")
    return [
        f"{subject} has been in {requires} for {_duration(soaked)} (since "
        f"{since.isoformat(timespec='minutes')}); soak gate in {rule_source} needs {soak}: "
        f"passes from {ready}"
    ]


def _metric_failures(subject: str, gates: Gates, evidence: Evidence, rule_source: str) -> list[str]:
    failures = []
    for bound in gates.metrics:
        found = evidence.metrics.figure(bound.name, bound.dataset)
        if isinstance(found, Miss):
            failures.append(_miss(subject, bound, found, evidence.metrics, rule_source))
        elif (bound.min is not None and not found.value >= bound.min) or (
            # Written as "not within": NaN (an exploded run) compares false with everything.
            bound.max is not None and not found.value <= bound.max
        ):
            failures.append(
                f"{bound.name} of {subject} is {found.value:g}{_where(found)}; gate in "
                f"{rule_source} needs {_bounds(bound)}"
            )
    return failures


def _where(figure: Figure) -> str:
    if figure.source == "run":
        return ""  # as before MLflow 3: a run's figure needs no note
    on = f" on dataset {figure.dataset}" if figure.dataset is not None else ""
    return f"{on} (its logged model)"


def _miss(
    subject: str, bound: MetricBound, miss: Miss, metrics: VersionMetrics, rule_source: str
) -> str:
    name, needs = bound.name, f"gate in {rule_source} needs {_bounds(bound)}"
    if miss.why == "no_source":
        return f"{subject} has no source run, so metric gate {name} in {rule_source} cannot pass"
    if miss.why == "model_gone":
        return (
            f"{subject} was registered from logged model {metrics.model_id}, which no longer "
            f"exists, so metric gate {name} in {rule_source} cannot pass"
        )
    if miss.why == "run_has_no_datasets":
        return (
            f"{subject} has no logged model, so metric gate {bound.label} in {rule_source} "
            f"cannot pass: its run's metrics name no dataset (drop `dataset:` to read the run)"
        )
    if miss.why == "ambiguous":
        return (
            f"{name} of {subject} was logged on several datasets ({_datasets(miss)}); gate in "
            f"{rule_source} names none: add `dataset: <name>` to it"
        )
    if not metrics.from_model:
        return f"{subject}'s run has no metric {name}; {needs}"
    if bound.dataset is None:
        # Often logged to the run alone (a client `log_metric` after `log_model`): say so.
        return (
            f"{subject}'s logged model {metrics.model_id} has no metric {name} (a version from "
            f"a logged model is judged by the model's metrics, not its run's: log it with "
            f"model_id); {needs}"
        )
    logged = f" (logged on: {_datasets(miss)})" if miss.datasets else ""
    return (
        f"{subject}'s logged model {metrics.model_id} has no metric {name} on dataset "
        f"{bound.dataset}{logged}; {needs}"
    )


def _datasets(miss: Miss) -> str:
    return ", ".join(f"{ds or '(no dataset)'} {value:g}" for ds, value in miss.datasets)


def _bounds(bound: MetricBound) -> str:
    parts = []
    if bound.min is not None:
        parts.append(f">= {bound.min:g}")
    if bound.max is not None:
        parts.append(f"<= {bound.max:g}")
    return " and ".join(parts)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def rules(requires: str | None, gates: Gates | None) -> list[str]:
    """The rules that apply, as a reviewer reads them (they passed if the plan has no error)."""
    found = [f"applied to {requires} first"] if requires else []
    if gates is not None:
        found += [f"{b.label} {_bounds(b)}" for b in gates.metrics]
        found += [f"tag {key} = {value}" for key, value in gates.tags]
        if gates.soak:
            found.append(f"soaked {gates.soak} in {requires}")
    return found
