"""Which value of a metric a gate (or a reviewer) reads for one version, and where it came from.
Pure: the evidence module gathers what the registry holds.

MLflow 3 logs metrics to a LoggedModel, each value with its step and dataset, and keeps them all;
a run keeps only the last value per key, whatever the dataset. A version registered from a
LoggedModel (source `models:/<id>`) is read from that model alone: its run may hold other models'
values too. A version without one (MLflow 2 style) is read from its run, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from reconciler.registry.values import Metric

FromWhere = Literal["model", "run"]


@dataclass(frozen=True)
class Figure:
    """One value of a metric, and where it was read."""

    key: str
    value: float
    source: FromWhere
    dataset: str | None = None

    def origin(self) -> str:
        """`model, eval`, `model` or `run`: as the review's From column says it."""
        if self.source == "run":
            return "run"
        return "model" if self.dataset is None else f"model, {self.dataset}"


@dataclass(frozen=True)
class Miss:
    """Why no figure could be read. `why`:
    * `no_source`: the version has no LoggedModel and no run that still exists;
    * `model_gone`: it was registered from a LoggedModel that no longer exists;
    * `missing`: the source has no value of the key (on the dataset asked for);
    * `ambiguous`: the key has values on several datasets and none was asked for;
    * `run_has_no_datasets`: a dataset was asked for, but the version's metrics are its run's.
    `datasets` holds the latest value per dataset the key has (None: logged without one)."""

    why: Literal["no_source", "model_gone", "missing", "ambiguous", "run_has_no_datasets"]
    datasets: tuple[tuple[str | None, float], ...] = ()


@dataclass(frozen=True)
class VersionMetrics:
    """What a version's metrics are read from: the LoggedModel it was registered from (every
    value logged, `model_rows` None when that model is gone), else its run (`run` None when it
    has none or the run is gone)."""

    model_id: str | None = None
    model_rows: tuple[Metric, ...] | None = None
    run: Mapping[str, float] | None = None
    latest: Mapping[tuple[str, str | None], Metric] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The latest value per (key, dataset): highest step, then the later timestamp, then
        # the one logged last (MLflow returns the rows in the order they were logged).
        latest: dict[tuple[str, str | None], Metric] = {}
        for row in self.model_rows or ():
            slot = (row.key, row.dataset)
            kept = latest.get(slot)
            if kept is None or (row.step, row.timestamp) >= (kept.step, kept.timestamp):
                latest[slot] = row
        object.__setattr__(self, "latest", latest)

    @property
    def from_model(self) -> bool:
        return self.model_id is not None

    def datasets(self, key: str) -> tuple[tuple[str | None, float], ...]:
        """The latest value of `key` on each dataset it was logged on, named datasets first."""
        found = [(ds, row.value) for (k, ds), row in self.latest.items() if k == key]
        return tuple(sorted(found, key=lambda pair: (pair[0] is None, pair[0] or "")))

    def figure(self, key: str, dataset: str | None = None) -> Figure | Miss:
        """The value of `key` (on `dataset`, if named) a gate reads."""
        if self.model_id is not None:
            if self.model_rows is None:
                return Miss("model_gone")
            on = self.datasets(key)
            if dataset is not None:
                row = self.latest.get((key, dataset))
                if row is None:
                    return Miss("missing", on)
                return Figure(key, row.value, "model", dataset)
            if not on:
                return Miss("missing")
            if len(on) > 1:
                return Miss("ambiguous", on)
            return Figure(key, on[0][1], "model", on[0][0])
        if self.run is None:
            return Miss("no_source")
        if dataset is not None:
            return Miss("run_has_no_datasets")
        value = self.run.get(key)
        return Miss("missing") if value is None else Figure(key, value, "run")

    def labels(self) -> list[tuple[str, str | None]]:
        """(key, dataset) of every figure this version has: a key logged on one dataset is
        named by its key alone; one logged on several, once per named dataset (values logged
        without a dataset beside named ones cannot be named, so they are not shown)."""
        if self.model_id is None:
            return [(key, None) for key in sorted(self.run or {})]
        keys = sorted({key for key, _ds in self.latest})
        pairs: list[tuple[str, str | None]] = []
        for key in keys:
            on = self.datasets(key)
            if len(on) == 1:
                pairs.append((key, None))
            else:
                pairs += [(key, ds) for ds, _v in on if ds is not None]
        return pairs
