"""The registries a command talks to: one per site (planning/sites.py), connected once, each in
its workspace, and read concurrently."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from reconciler.apply.options import Interrupt
from reconciler.errors import (
    InvalidInput,
    Problem,
    ReconcilerError,
    StoppedBeforeWriting,
    UsageError,
)
from reconciler.pins.registry_settings import resolve
from reconciler.pins.values import DesiredState
from reconciler.planning.sites import Site, sites
from reconciler.registry.base import Registry
from reconciler.registry.connection import Connection
from reconciler.registry.workspaces import DEFAULT, Workspace


class Connect(Protocol):
    """Given how to reach a registry and the workspace a site uses there, the registry (the CLI
    keeps one per pair: a registry object works in one workspace)."""

    def __call__(self, connection: Connection, workspace: str | None = None) -> Registry: ...


T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class OpenSite:
    """A site with its registry connected and its workspace chosen."""

    site: Site
    registry: Registry
    workspace: Workspace

    @property
    def identity(self) -> str:
        """The registry as lineage tags and plans name it: URI without credentials, and the
        workspace unless it is the default one."""
        shown = self.registry.describe()
        if self.workspace.name not in (None, DEFAULT):
            return f"{shown} workspace:{self.workspace.name}"
        return shown

    def holds(self, environment: str) -> bool:
        return self.site.holds(environment)


def connection_for(site: Site, environ: Mapping[str, str]) -> Connection:
    """How to reach a site's registry: the command's, or its own `registry:` with its `${VAR}`s
    read now (an unset one is refused at its file and line before any request)."""
    setting = site.setting
    if setting is None or not setting.own_server:
        return Connection()  # the command's: its URI, credentials and MLFLOW_WORKSPACE
    resolved = resolve(setting, environ)
    return Connection(
        tracking_uri=resolved.tracking_uri,
        username=resolved.username,
        password=resolved.password,
        token=resolved.token,
        configured=True,
    )


def needed(desired: DesiredState, environments: Collection[str]) -> set[str]:
    """The environments a command on `environments` (empty: all) reads: those, and the sources
    their pins copy from."""
    chosen = set(environments) or set(desired.environments)
    sources = {pin.source for pin in desired.pins if pin.environment in chosen and pin.source}
    return chosen | {source for source in sources if source in desired.environments}


def open_sites(
    desired: DesiredState,
    connect: Connect,
    environ: Mapping[str, str],
    environments: Collection[str] = (),
    interrupt: Interrupt | None = None,
) -> list[OpenSite]:
    """Connect the sites holding `environments` (empty: all) and their sources, each in its
    workspace; the command's registry when no environment is in scope."""
    wanted = needed(desired, environments)
    every = sites(desired)
    chosen = [site for site in every if wanted & set(site.environments)] or [every[0]]
    # Every `${VAR}` first: an unset one refuses the command before any registry is asked.
    connections = [connection_for(site, environ) for site in chosen]

    def open_one(pair: tuple[Site, Connection]) -> OpenSite:
        site, connection = pair
        registry = connect(connection, site.workspace.name if site.workspace else None)
        return OpenSite(site, registry, registry.use_workspace(site.workspace))

    opened = each(
        open_one, list(zip(chosen, connections, strict=True)), _sites_named(chosen), interrupt
    )
    _refuse_one_registry_twice(opened)
    return opened


def _refuse_one_registry_twice(opened: Sequence[OpenSite]) -> None:
    """Two sites that reach one registry (and workspace), however their settings spell it, are
    one registry: a copy into itself, and each site taking the other's environments for removed
    pins (and retiring them). Refused before anything is read."""
    seen: dict[str, OpenSite] = {}
    for site in opened:
        if site.identity in seen:
            first = seen[site.identity]
            own = site if site.site.own_server else first
            other = first if own is site else site
            setting = own.site.setting
            where = ", ".join(other.site.environments) or "the command"
            problem = (
                f"names the registry {where} already lives in ({site.identity}): environments "
                "of one registry need no `registry:` block (remove it, or name another registry)"
            )
            if setting is not None:
                raise InvalidInput(
                    [
                        Problem(
                            setting.file,
                            setting.line_of("tracking_uri"),
                            "registry.tracking_uri",
                            problem,
                        )
                    ]
                )
            raise UsageError(f"{', '.join(site.site.environments)}: {problem}")
        seen[site.identity] = site


def each(
    work: Callable[[T], R],
    items: Sequence[T],
    names: Sequence[str] | None = None,
    interrupt: Interrupt | None = None,
) -> list[R]:
    """`work` on every item, concurrently when there are several (one thread per registry:
    reads of different registries overlap). A failure names the environments of its registry,
    so the one line says which registry failed; the first failure (in item order) is raised.
    With `interrupt` (apply, which handles signals itself), a signal stops the wait at once:
    the threads are daemons, so neither the command nor its exit waits for a silent registry."""
    if len(items) <= 1 and interrupt is None:
        return [work(item) for item in items]
    results: list[R | None] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)
    left = [len(items)]
    lock = threading.Lock()
    done = threading.Event()

    def run(index: int) -> None:
        try:
            results[index] = work(items[index])
        except BaseException as error:  # handed to the waiting thread
            errors[index] = error
        finally:
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    done.set()

    for index in range(len(items)):
        threading.Thread(target=run, args=(index,), name="registry", daemon=True).start()
    while not done.wait(0.1):
        if interrupt is not None and interrupt.event.is_set():
            raise StoppedBeforeWriting(interrupt.signal, "reading the registries")
    for index, error in enumerate(errors):
        if error is None:
            continue
        if isinstance(error, ReconcilerError) and names is not None and len(items) > 1:
            raise _named(error, names[index]) from None
        raise error
    return list(results)  # type: ignore[arg-type]


def _named(error: ReconcilerError, environments: str) -> ReconcilerError:
    """The same error, its message prefixed with the environments whose registry failed."""
    if getattr(error, "problems", None):
        return error  # file-and-line problems name their environment already
    try:
        named = type(error)(f"{environments}: {error}")
    except TypeError:
        return error
    return named


def _sites_named(chosen: Iterable[Site]) -> list[str]:
    return [", ".join(site.environments) or "(the command's registry)" for site in chosen]
