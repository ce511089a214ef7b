"""Pins that name another registry's version (`from: <environment>`), renumbered in the registry
they are applied to. Pure.

A pin `version: 15, from: staging` in production, whose registry is not staging's, means "the
copy of staging's v15". When production's registry holds that copy (found by its lineage tags)
the pin is planned as that version, like any other pin. When it does not yet, the pin is planned
against a stand-in version (PENDING_COPY: MLflow numbers versions from 1) and the plan carries a
Copy: apply makes the copy first, under the model's lease, then plans again with its number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from reconciler.errors import Problem
from reconciler.pins.values import DesiredState, Pin
from reconciler.registry.lineage import find_copy
from reconciler.registry.values import READY, ActualState, ModelVersion, RegisteredModel

PENDING_COPY = "0"  # the stand-in number of a copy apply has not made yet


@dataclass(frozen=True)
class Source:
    """Where a pin's version comes from: an environment in another registry, and its number
    there."""

    environment: str
    registry: str  # the source registry's identity (URI without credentials, workspace)
    version: str
    run_id: str | None = None

    def label(self) -> str:
        """As plans show the source next to the copy's own number: `staging v15`."""
        return f"{self.environment} v{self.version}"


def shown(number: str, source: str | None) -> str:
    """A version as plans and status show it: `v16`; for a pin with `from:`, `v16 (staging
    v15)` with `source` its label, or `copy of staging v15` before the copy exists."""
    if source is None:
        return f"v{number}"
    if number == PENDING_COPY:
        return f"copy of {source}"
    return f"v{number} ({source})"


@dataclass(frozen=True)
class Copy:
    """A version apply copies into `registry` before moving it into `environment`."""

    environment: str
    model: str
    source: Source
    registry: str  # the target registry's identity
    size: int | None = None  # bytes to transfer; None: not measured (offline, or unlistable)


@dataclass(frozen=True)
class SourceSide:
    """A source environment's registry as a target site sees it: its identity and what it holds
    of the sourced models."""

    registry: str
    actual: ActualState


@dataclass(frozen=True)
class Sourced:
    """A site's desired state with its sourced pins renumbered in its own registry."""

    desired: DesiredState
    actual: ActualState  # with a stand-in version for each copy not made yet
    sources: Mapping[tuple[str, str], Source] = field(default_factory=dict)
    copies: tuple[Copy, ...] = ()
    problems: tuple[Problem, ...] = ()
    # Pins whose source version is gone from its registry but whose copy is here: a rollback to
    # it needs no source (the copy carries the files and its lineage); its evidence is gone.
    orphans: frozenset[tuple[str, str]] = frozenset()


def source_pins(
    desired: DesiredState,
    actual: ActualState,
    sides: Mapping[str, SourceSide],
    registry: str,
) -> Sourced:
    """Renumber every pin whose `from:` names an environment in `sides` (another registry).
    Pins from an environment of the same registry are its own numbers already: kept as they
    are."""
    pins: list[Pin] = []
    models = dict(actual.models)
    sources: dict[tuple[str, str], Source] = {}
    copies: list[Copy] = []
    problems: list[Problem] = []
    orphans: set[tuple[str, str]] = set()
    for pin in desired.pins:
        side = sides.get(pin.source) if pin.source is not None else None
        if side is None:
            pins.append(pin)
            continue
        target = models.get(pin.model, RegisteredModel(pin.model))
        copy = find_copy(target.versions, side.registry, pin.model, pin.version)
        gone = _gone(pin, side)
        if gone and copy is not None and copy.status == READY:
            # The source pruned it; the copy here is whole (checked before it moves).
            orphans.add((pin.environment, pin.model))
            sources[(pin.environment, pin.model)] = Source(
                pin.source or "", side.registry, pin.version, None
            )
            pins.append(replace(pin, version=copy.version, run_id=None))
            continue
        found = _source_version(pin, side, problems)
        if found is None:
            continue  # its problem says why; the pin is not planned
        source = Source(pin.source or "", side.registry, pin.version, found.run_id)
        if copy is None or copy.status != READY:
            # Not made yet (or not finished: apply resumes or waits for it): planned as a
            # stand-in, never served as it is.
            copies.append(Copy(pin.environment, pin.model, source, registry))
            stand_in = ModelVersion(pin.model, PENDING_COPY, run_id=None)
            models[pin.model] = replace(
                target, versions={**target.versions, PENDING_COPY: stand_in}
            )
            number = PENDING_COPY
        else:
            number = copy.version
        sources[(pin.environment, pin.model)] = source
        # The run the pin names is the source's (checked above); the copy has a run of its own.
        pins.append(replace(pin, version=number, run_id=None))
    return Sourced(
        replace(desired, pins=tuple(pins)),
        replace(actual, models=models),
        sources,
        tuple(copies),
        tuple(problems),
        frozenset(orphans),
    )


def _gone(pin: Pin, side: SourceSide) -> bool:
    model = side.actual.models.get(pin.model)
    return model is None or pin.version not in model.versions


def _source_version(pin: Pin, side: SourceSide, problems: list[Problem]) -> ModelVersion | None:
    """The version the pin names in its source registry, if it can be copied."""
    model = side.actual.models.get(pin.model)
    version = model.versions.get(pin.version) if model is not None else None
    where = f"{pin.source}'s registry ({side.registry})"
    if version is None:
        missing = f"v{pin.version}" if model is not None else "(no such registered model)"
        problems.append(
            Problem(
                pin.file, pin.version_line, "version", f"{pin.model} {missing} is not in {where}"
            )
        )
        return None
    if version.status != READY:
        problems.append(
            Problem(
                pin.file,
                pin.version_line,
                "version",
                f"{pin.model} v{pin.version} in {where} is {version.status}, not READY: "
                "nothing unfinished is copied",
            )
        )
        return None
    if pin.run_id is not None and pin.run_id != version.run_id:
        problems.append(
            Problem(
                pin.file,
                pin.run_id_line,
                "run_id",
                f"{pin.model} v{pin.version} in {where} comes from run {version.run_id}, "
                f"not {pin.run_id}",
            )
        )
        return None
    return version
