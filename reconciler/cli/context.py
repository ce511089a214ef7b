"""What every command needs: the registry to use and the repository root. Tests pass an
AppContext with a fake registry through `CliRunner(obj=...)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.apply.lease import DEFAULT_SETTLE, DEFAULT_TTL
from reconciler.cli.output import print_note
from reconciler.registry.base import Registry

RegistryFactory = Callable[[str | None], Registry]


def _mlflow_registry(tracking_uri: str | None) -> Registry:
    from reconciler.registry.mlflow_registry import MlflowRegistry, check_tracking_uri

    uri, note = check_tracking_uri(tracking_uri)
    if note:
        print_note(note)
    return MlflowRegistry(uri)


@dataclass
class AppContext:
    """What every command needs. Tests pass one with a fake registry via `CliRunner(obj=...)`."""

    registry_factory: RegistryFactory = _mlflow_registry
    root: Path | None = None
    tracking_uri: str | None = None
    traceback: bool = False
    # Lease timing (see apply/lease.py): tests shorten them; users keep the defaults.
    lease_settle: float = DEFAULT_SETTLE
    lease_ttl: float = DEFAULT_TTL

    def registry(self) -> Registry:
        return self.registry_factory(self.tracking_uri)

    def repository_root(self) -> Path:
        if self.root is None:
            from reconciler.gitrepo import repository_root

            self.root = repository_root(Path.cwd())
        return self.root
