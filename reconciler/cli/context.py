"""What every command needs: the registry to use and the repository root. Tests pass an
AppContext with a fake registry through `CliRunner(obj=...)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.apply.lease import DEFAULT_SETTLE, DEFAULT_TTL
from reconciler.cli.output import print_note
from reconciler.registry.base import Registry
from reconciler.registry.connection import Connection

# How to reach a registry → the registry (tests: `lambda _connection: fake`).
RegistryFactory = Callable[[Connection], Registry]


def _mlflow_registry(connection: Connection) -> Registry:
    from reconciler.registry.mlflow_registry import MlflowRegistry, check_tracking_uri

    if connection.configured:  # an environment's own `registry:`: its URI is said in full
        return MlflowRegistry(connection=connection)
    uri, note = check_tracking_uri(connection.tracking_uri)
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

    # One registry per connection and workspace for the life of the command (each learns
    # things once, and works in one workspace).
    connected: dict[tuple[Connection, str | None], Registry] = field(default_factory=dict)

    def connect(self, connection: Connection, workspace: str | None = None) -> Registry:
        """The registry a connection reaches, for one workspace there; the command's (not
        configured) is the one --tracking-uri / MLFLOW_TRACKING_URI names."""
        if not connection.configured:
            connection = replace(connection, tracking_uri=self.tracking_uri)
        key = (connection, workspace)
        if key not in self.connected:
            self.connected[key] = self.registry_factory(connection)
        return self.connected[key]

    def registry(self) -> Registry:
        """The command's registry."""
        return self.connect(Connection())

    def notices(self) -> list[str]:
        """What the registries used learnt about themselves, for the command to print."""
        return [notice for registry in self.connected.values() for notice in registry.notices]

    def repository_root(self) -> Path:
        if self.root is None:
            from reconciler.gitrepo import repository_root

            self.root = repository_root(Path.cwd())
        return self.root
