"""The plan as a value: steps with their ordering key and compare-and-set expectations, one
entry per pin, the unmanaged holders, retirements, and the checksum `--expect-plan` compares."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from reconciler.errors import Problem
from reconciler.pins.values import Pin
from reconciler.planning.sourcing import Copy, Source, shown
from reconciler.records.bookkeeping import Adoption, EnvRecord
from reconciler.registry.workspaces import NO_WORKSPACES, Workspace

StepKind = Literal["transition", "archive", "set_alias", "retire", "remove_alias", "disown"]
_KIND_ORDER: dict[str, int] = {
    "transition": 0,
    "archive": 1,
    "set_alias": 2,
    "retire": 3,
    "remove_alias": 4,
    "disown": 5,
}


@dataclass(frozen=True)
class Step:
    """One registry write.

    transition: move `version` into `stage`, archiving `archives` (the versions there before),
                in one `archive_existing_versions=True` call.
    archive:    move `version` out of `stage` to Archived (drift: an extra in a managed stage).
    set_alias:  point `alias` at `version` (it pointed at `previous`, or nowhere).
    retire:     the pin was removed: move `version` out of `stage` to Archived.
    remove_alias: the pin was removed: delete `alias` (it pointed at `version`).
    disown:     the pin was removed: drop the environment's ownership record on the model.
    """

    kind: StepKind
    environment: str
    model: str
    version: str
    stage: str | None = None
    alias: str | None = None
    archives: tuple[str, ...] = ()
    previous: str | None = None
    # Compare-and-set: the stage of each version this step relies on, as the plan saw it right
    # before the step. If the registry shows otherwise at write time, someone else moved it.
    expect: tuple[tuple[str, str], ...] = ()
    rank: int = 0  # environment rank: higher environments first
    sequence: int = 0  # position within the model's walk (steps of one model stay in order)
    # The version's number in the registry it was copied from (`staging v15`), for a pin with
    # `from:`; the step's own version is the copy's (PENDING_COPY until apply makes it).
    source: str | None = None

    @property
    def shown_version(self) -> str:
        """`v16`, `v16 (staging v15)`, or `copy of staging v15` before the copy exists."""
        return shown(self.version, self.source)

    def action(self) -> str:
        """What the step does, as plans and results show it: `v15 → Production, archives v6`."""
        if self.kind == "transition":
            archived = f", archives {_versions(self.archives)}" if self.archives else ""
            return f"{self.shown_version} → {self.stage}{archived}"
        if self.kind == "archive":
            return f"archive v{self.version} (extra in {self.stage})"
        if self.kind == "retire":
            return f"retire v{self.version} from {self.stage}"
        if self.kind == "remove_alias":
            return f"remove @{self.alias} (was v{self.version})"
        if self.kind == "disown":
            return "forget ownership"
        previous = f"from v{self.previous}" if self.previous else "new"
        return f"@{self.alias} → {self.shown_version} ({previous})"

    def describe(self) -> str:
        return f"{self.model}: {self.action()}"

    @property
    def order_key(self) -> tuple[int, str, int, int]:
        return (self.rank, self.model, self.sequence, _KIND_ORDER[self.kind])


# promoted_onward: the version serves in a higher environment (in sync); onward_pending: the higher
# environment's pin will take it there, but the registry does not hold it there yet.
EntryStatus = Literal["in_sync", "promoted_onward", "onward_pending", "change", "error"]


@dataclass(frozen=True)
class Entry:
    """One pin and what the plan does about it."""

    pin: Pin
    target: str  # what the environment sets: "Production", "@champion", "Staging + @challenger"
    status: EntryStatus
    current: tuple[str, ...]  # versions the stage holds now (or the alias target)
    steps: tuple[Step, ...] = ()
    onward_to: str | None = None  # the environment that holds the version, when promoted onward
    problem: Problem | None = None
    # What the model's state tag records for this environment (owner, applied commit); None when
    # nothing is recorded.
    record: EnvRecord | None = None


@dataclass(frozen=True)
class Unmanaged:
    """A model holding an environment's stage or alias without a pin there: shown, never touched."""

    environment: str
    model: str
    target: str
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Retirement:
    """A model reconciler managed in an environment whose pin file is gone."""

    environment: str
    model: str
    steps: tuple[Step, ...]
    enabled: bool  # prune allowed (--prune or `prune: true`); otherwise only shown


@dataclass(frozen=True)
class Plan:
    entries: tuple[Entry, ...]
    steps: tuple[Step, ...]
    unmanaged: tuple[Unmanaged, ...] = ()
    problems: tuple[Problem, ...] = field(default=())
    retirements: tuple[Retirement, ...] = ()
    # In-sync pins whose bookkeeping apply will record (adoption): registry writes, but no stage
    # or alias moves, so they are not changes (`plan --detailed-exitcode` exits 0 for them).
    adoptions: tuple[Adoption, ...] = ()
    workspace: Workspace = NO_WORKSPACES  # where in the registry it reads and writes
    # The repository planning (its identity, as ownership records name it); None: unknown.
    repository: str | None = None
    # Pinned models whose state tag this version cannot read, and why: apply refuses them.
    unreadable: tuple[tuple[str, str], ...] = ()
    # Versions apply copies from another registry before it moves them (pins with `from:`).
    copies: tuple[Copy, ...] = ()
    # Where each sourced pin's version comes from, by (environment, model).
    sources: tuple[tuple[tuple[str, str], Source], ...] = ()
    # (environment, registry as shown, workspace) of every environment in scope, when the
    # repository's environments live in more than one registry; empty otherwise.
    registries: tuple[tuple[str, str, Workspace], ...] = ()
    # (environment, this repository's identity there) when it differs by registry (workspaces).
    repositories: tuple[tuple[str, str], ...] = ()

    def without_retirements_in(self, environments: Collection[str]) -> Plan:
        """The plan without retiring anything from `environments` (environments of this
        repository that live in another registry: their pins are elsewhere, not removed)."""
        if not any(r.environment in environments for r in self.retirements):
            return self
        dropped = {
            id(step) for r in self.retirements if r.environment in environments for step in r.steps
        }
        return replace(
            self,
            retirements=tuple(r for r in self.retirements if r.environment not in environments),
            steps=tuple(step for step in self.steps if id(step) not in dropped),
        )

    def source_of(self, environment: str, model: str) -> Source | None:
        return dict(self.sources).get((environment, model))

    def registry_of(self, environment: str) -> tuple[str, Workspace] | None:
        """The registry and workspace `environment` lives in, when there are several."""
        for name, registry, workspace in self.registries:
            if name == environment:
                return registry, workspace
        return None

    def owned_elsewhere(self, entry: Entry) -> bool:
        """Whether another repository owns the entry's model in its environment."""
        owner = entry.record.owner if entry.record else None
        ours = dict(self.repositories).get(entry.pin.environment, self.repository)
        return owner is not None and ours is not None and owner != ours

    @property
    def has_changes(self) -> bool:
        return bool(self.steps) or bool(self.copies)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(_KIND_ORDER, 0)
        for step in self.steps:
            counts[step.kind] += 1
        return counts

    @property
    def checksum(self) -> str:
        """A digest of exactly what apply would write, for `apply --expect-plan`-style checks."""
        steps: list[object] = [_identity(step) for step in self.steps]
        # The same steps in another workspace are another plan (earlier checksums unchanged).
        if self.workspace.name is not None:
            steps.append({"workspace": self.workspace.name})
        if self.registries:
            steps.append({"registries": [[env, reg, ws.name] for env, reg, ws in self.registries]})
        payload = json.dumps(steps, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def _identity(step: Step) -> dict[str, object]:
    """A step as the checksum sees it. A copied version is named by its source (`staging v15`),
    not by its number here: the plan reviewed before apply makes the copy and the plan apply
    makes after it are one plan, and their checksums agree."""
    found = asdict(step)
    del found["source"]  # unsourced steps hash as they always have
    if step.source is not None:
        found["version"] = step.source
        found["expect"] = [
            (step.source if version == step.version else version, stage)
            for version, stage in step.expect
        ]
    return found


def _versions(versions: Iterable[str]) -> str:
    return ", ".join(f"v{v}" for v in versions)
