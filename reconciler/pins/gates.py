"""`gates:` as written in settings and pins: metric bounds, required tags, a soak time. The
rules that judge a version against them are `planning.policy`'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricBound:
    name: str
    min: float | None = None
    max: float | None = None


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
            MetricBound(name, bounds.get("min"), bounds.get("max"))
            for name, bounds in sorted((data.get("metrics") or {}).items())
        )
        tags = tuple(sorted((data.get("tags") or {}).items()))
        return cls(metrics, tags, data.get("soak"))
