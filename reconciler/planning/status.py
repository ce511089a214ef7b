"""`reconciler status` rows: per environment and model, pinned vs registry. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.planning.sourcing import shown
from reconciler.planning.steps import Plan
from reconciler.records.bookkeeping import state_of
from reconciler.registry.values import ActualState
from reconciler.registry.workspaces import NO_WORKSPACES, Workspace


@dataclass(frozen=True)
class StatusRow:
    environment: str
    model: str
    pinned: str
    target: str  # "Production", "@champion", "Production + @champion"
    registry: tuple[str, ...]  # versions the stage holds (or the alias target) now
    in_sync: bool
    last_applied_commit: str | None
    # Where the alias points now, for an environment with a stage and an alias (serving may load
    # either); None otherwise, or when the alias is unset.
    alias: str | None = None
    alias_version: str | None = None
    workspace: Workspace = NO_WORKSPACES  # where the registry columns were read
    # Why the model's state tag cannot be read (then the last applied commit is not known).
    state_problem: str | None = None
    # For a pin with `from:`: the version's number where it comes from (`staging v15`); then
    # `pinned` is the copy's number here (PENDING_COPY: not copied yet).
    source: str | None = None

    @property
    def shown_pinned(self) -> str:
        """`v16`, `v16 (staging v15)`, or `copy of staging v15` when not copied yet."""
        return shown(self.pinned, self.source)


def status_rows(plan: Plan, actual: ActualState) -> list[StatusRow]:
    """One row per pin of the plan; pins the registry cannot satisfy show as not in sync."""
    rows = []
    for entry in plan.entries:
        pin = entry.pin
        registered = actual.models.get(pin.model)
        alias = entry.target.partition(" + @")[2] or None
        alias_version = registered.aliases.get(alias) if registered and alias else None
        state = state_of(registered)
        record = state.environments.get(pin.environment)
        source = plan.source_of(pin.environment, pin.model)
        rows.append(
            StatusRow(
                environment=pin.environment,
                model=pin.model,
                pinned=pin.version,
                target=entry.target,
                registry=entry.current,
                in_sync=entry.status in ("in_sync", "promoted_onward"),
                last_applied_commit=record.commit if record else None,
                alias=alias,
                alias_version=alias_version,
                workspace=plan.workspace,
                state_problem=state.unreadable,
                source=source.label() if source is not None else None,
            )
        )
    return rows
