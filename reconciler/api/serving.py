"""`verify` for pins that name another registry's version (`from:`): the endpoint serves the
copy, whose number is this registry's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from reconciler.api.planning import read_sites
from reconciler.api.sites import Connect, open_sites
from reconciler.errors import UsageError
from reconciler.pins.values import DesiredState
from reconciler.planning.sourcing import PENDING_COPY, source_pins
from reconciler.serving.verify import Target


def copied_numbers(
    desired: DesiredState, targets: Sequence[Target], connect: Connect, environ: Mapping[str, str]
) -> list[Target]:
    """Each sourced target expecting its copy's number in its environment's registry (one read
    of the registries involved); a copy not made yet cannot be served: refused, naming it."""
    wanted = {t.environment for t in targets if t.pin_source}
    opened = open_sites(desired, connect, environ, sorted(wanted))
    sides = read_sites(desired, opened)
    numbers: dict[tuple[str, str], str] = {}
    for site in opened:
        if not wanted & set(site.site.environments):
            continue
        sourced = source_pins(
            desired.only(site.site.environments),
            sides.of(site),
            {env: side for env, (_s, side) in sides.for_target(site, opened, desired).items()},
            site.identity,
        )
        for pin in sourced.desired.pins:
            source = sourced.sources.get((pin.environment, pin.model))
            if source is None:
                continue
            if pin.version == PENDING_COPY:
                raise UsageError(
                    f"{pin.environment}: {pin.model}: {source.label()} has not been copied into "
                    f"{site.identity} yet, so nothing can serve it: run `reconciler apply` first"
                )
            numbers[(pin.environment, pin.model)] = pin.version
    return [replace(t, expected=numbers.get((t.environment, t.model), t.expected)) for t in targets]
