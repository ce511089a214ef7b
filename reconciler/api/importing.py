"""`import` for one registry: pins for what it serves in the environments that live there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler.api.sites import OpenSite
from reconciler.importing.files import ImportReport, write_pins
from reconciler.importing.from_registry import (
    Imported,
    ImportSkip,
    candidates,
    pins_from_registry,
)
from reconciler.pins.values import DesiredState, Environment
from reconciler.redact import redact_uri, scrub
from reconciler.registry.lineage import Lineage
from reconciler.registry.values import ActualState


def import_site(
    root: Path,
    site: OpenSite,
    registry_uri: str,
    chosen: Sequence[Environment],
    models: Sequence[str],
    desired: DesiredState,
    overwrite: bool,
    now: datetime | None,
) -> ImportReport:
    registry, workspace = site.registry, site.workspace
    # Two reads, no per-model loop: every model (latest version per stage), then all versions of
    # the models holding a stage or alias in scope (a doubled stage needs them all).
    overview = registry.read(())
    wanted = candidates(overview, list(chosen))
    if models:
        wanted &= set(models)
    actual = registry.read(wanted) if wanted else overview
    # Prompts are never pinned, but one holding an environment's alias is reported as skipped
    # (model searches leave prompts out: one more request).
    actual = replace(actual, prompts=registry.read_prompts())
    found = pins_from_registry(actual, list(chosen), set(models) if models else None)
    found = _by_source_numbers(found, actual, desired)
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    uri = scrub(redact_uri(registry_uri))
    where = f" (workspace {workspace.describe()})" if workspace.name is not None else ""
    existing = {(pin.environment, pin.model): pin for pin in desired.pins}
    files = write_pins(
        root,
        found.pins,
        existing,
        overwrite,
        [f"imported from {uri}{where} at {when} by reconciler import"],
    )
    return ImportReport(uri, tuple(files), found.skipped, workspace.name)


def _by_source_numbers(found: Imported, actual: ActualState, desired: DesiredState) -> Imported:
    """A pin with `from:` names its source's number: what serves here is compared (and written)
    by the number of the version it is a copy of. What serves here and is no copy of a version
    of that model cannot be written into such a pin: skipped, saying so."""
    sourced = {(p.environment, p.model): p for p in desired.pins if p.source is not None}
    pins, skipped = [], list(found.skipped)
    for pin in found.pins:
        existing = sourced.get((pin.environment, pin.model))
        if existing is None:
            pins.append(pin)
            continue
        version = actual.models[pin.model].versions.get(pin.version)
        lineage = Lineage.of(version) if version is not None else None
        if lineage is None or lineage.model != pin.model:
            skipped.append(
                ImportSkip(
                    pin.environment,
                    pin.model,
                    f"serves v{pin.version}, which is no copy from {existing.source}: its pin "
                    f"(from: {existing.source}) names {existing.source}'s versions",
                )
            )
            continue
        pins.append(replace(pin, version=lineage.version, run_id=lineage.run_id))
    return replace(found, pins=tuple(pins), skipped=tuple(skipped))


def merge_imports(reports: Sequence[ImportReport]) -> ImportReport:
    """Imports from several registries as one report (the first names the registry)."""
    if len(reports) == 1:
        return reports[0]
    return ImportReport(
        ", ".join(dict.fromkeys(r.registry for r in reports)),
        tuple(f for r in reports for f in r.files),
        tuple(s for r in reports for s in r.skipped),
        reports[0].workspace,
    )
