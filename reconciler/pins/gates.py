"""`gates:` as written in settings and pins: metric bounds, required tags, a soak time. The
rules that judge a version against them are `planning.policy`'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.errors import Problem
from reconciler.pins.documents import Document


@dataclass(frozen=True)
class MetricBound:
    name: str
    min: float | None = None
    max: float | None = None
    # The dataset the value must have been logged on (MLflow 3 logs a metric per dataset);
    # None: the metric's only one.
    dataset: str | None = None

    @property
    def label(self) -> str:
        return metric_label(self.name, self.dataset)


def metric_label(key: str, dataset: str | None) -> str:
    """How plans name a metric's figure: `accuracy`, or `accuracy (eval)` on a named dataset."""
    return key if dataset is None else f"{key} ({dataset})"


@dataclass(frozen=True)
class Gates:
    metrics: tuple[MetricBound, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    soak: str | None = None  # as written, e.g. "24h"

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> Gates | None:
        """From schema-valid YAML data (`gates:` in settings or a pin)."""
        if not data:
            return None
        metrics = tuple(
            MetricBound(name, bounds.get("min"), bounds.get("max"), bounds.get("dataset"))
            for name, bounds in sorted((data.get("metrics") or {}).items())
        )
        tags = tuple(sorted((data.get("tags") or {}).items()))
        return cls(metrics, tags, data.get("soak"))


def bound_problems(document: Document) -> list[Problem]:
    """Metric bounds the schema lets through but that bound nothing: `{dataset: eval}` alone.
    Called on a schema-valid document (settings or pin)."""
    data = document.data if isinstance(document.data, dict) else {}
    metrics = (data.get("gates") or {}).get("metrics") or {}
    return [
        Problem(
            document.display,
            document.line_of(("gates", "metrics", name)),
            f"gates.metrics.{name}",
            "needs min, max or both (dataset only says which logged value to read)",
        )
        for name, bound in sorted(metrics.items())
        if "min" not in bound and "max" not in bound
    ]
