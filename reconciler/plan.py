"""`diff(desired, actual) -> Plan`: the pure core. No I/O, no clock, deterministic.

Per model, environments are walked highest first (Production, Staging, alias-only) against a
simulated copy of the registry, so each step is computed on the state the previous steps leave.
That makes the plan exact for chains such as a swap (production takes staging's version while
staging takes production's) and keeps Production occupied at every point of the apply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

from reconciler.errors import Problem
from reconciler.state import (
    ARCHIVED,
    READY,
    ActualState,
    DesiredState,
    Environment,
    Pin,
    RegisteredModel,
)

StepKind = Literal["transition", "archive", "set_alias"]
_KIND_ORDER: dict[str, int] = {"transition": 0, "archive": 1, "set_alias": 2}


@dataclass(frozen=True)
class Step:
    """One registry write.

    transition: move `version` into `stage`, archiving `archives` (the versions there before),
                in one `archive_existing_versions=True` call.
    archive:    move `version` out of `stage` to Archived (drift: an extra in a managed stage).
    set_alias:  point `alias` at `version` (it pointed at `previous`, or nowhere).
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

    def describe(self) -> str:
        if self.kind == "transition":
            archived = f", archives {_versions(self.archives)}" if self.archives else ""
            return f"{self.model}: v{self.version} → {self.stage}{archived}"
        if self.kind == "archive":
            return f"{self.model}: archive v{self.version} (an extra in {self.stage})"
        previous = f"v{self.previous}" if self.previous else "unset"
        return f"{self.model}: @{self.alias} {previous} → v{self.version}"

    @property
    def order_key(self) -> tuple[int, str, int, int]:
        return (self.rank, self.model, self.sequence, _KIND_ORDER[self.kind])


EntryStatus = Literal["in_sync", "promoted_onward", "change", "error"]


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


@dataclass(frozen=True)
class Unmanaged:
    """A model holding an environment's stage or alias without a pin there: shown, never touched."""

    environment: str
    model: str
    target: str
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    entries: tuple[Entry, ...]
    steps: tuple[Step, ...]
    unmanaged: tuple[Unmanaged, ...] = ()
    problems: tuple[Problem, ...] = field(default=())

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(_KIND_ORDER, 0)
        for step in self.steps:
            counts[step.kind] += 1
        return counts

    @property
    def checksum(self) -> str:
        """A digest of exactly what apply would write, for `apply --expect-plan`-style checks."""
        payload = json.dumps([asdict(step) for step in self.steps], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def diff(
    desired: DesiredState,
    actual: ActualState,
    environments: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
) -> Plan:
    """The steps that make `actual` match `desired`, limited to the named environments/models."""
    env_scope = set(environments) if environments is not None else set(desired.environments)
    model_scope = set(models) if models is not None else None
    ranks = {env.name: i for i, env in enumerate(desired.environments_by_rank())}

    by_model: dict[str, list[Pin]] = {}
    for pin in desired.pins:
        by_model.setdefault(pin.model, []).append(pin)

    entries: list[Entry] = []
    steps: list[Step] = []
    for model in sorted(by_model):
        if model_scope is not None and model not in model_scope:
            continue
        pins = sorted(by_model[model], key=lambda p: ranks[p.environment])
        model_entries = _diff_model(desired.environments, ranks, pins, actual.models.get(model))
        for entry in model_entries:
            if entry.pin.environment in env_scope:
                entries.append(entry)
                steps.extend(entry.steps)

    problems = tuple(sorted(e.problem for e in entries if e.problem is not None))
    unmanaged = _unmanaged(desired, actual, env_scope, model_scope)
    entries.sort(key=lambda e: (ranks[e.pin.environment], e.pin.model))
    steps.sort(key=lambda s: s.order_key)
    return Plan(tuple(entries), tuple(steps), unmanaged, problems)


def _diff_model(
    environments: Mapping[str, Environment],
    ranks: Mapping[str, int],
    pins: list[Pin],
    registered: RegisteredModel | None,
) -> list[Entry]:
    # The highest environment pinning a version under a stage owns that version's stage.
    owner: dict[str, str] = {}
    for pin in pins:
        if environments[pin.environment].stage and pin.version not in owner:
            owner[pin.version] = pin.environment

    sim = _Simulation(registered)
    # Reviewers read "what serves now → what will": `current` is the registry before any step.
    now = _Simulation(registered)
    entries = []
    for pin in pins:
        env = environments[pin.environment]
        problem = _pin_problem(pin, registered)
        if problem is not None:
            entries.append(Entry(pin, env.target(), "error", (), problem=problem))
            continue
        before = now.current(env)
        pin_steps: list[Step] = []
        onward_to = None
        if env.stage:
            stage_owner = owner[pin.version]
            if stage_owner != env.name:
                onward_to = stage_owner
                # The version serves higher up; this stage keeps nothing else.
                for extra in sim.in_stage(env.stage):
                    pin_steps.append(sim.archive(pin, env, ranks, extra))
            elif sim.stage_of(pin.version) != env.stage:
                pin_steps.append(sim.transition(pin, env, ranks))
            else:
                for extra in sim.in_stage(env.stage):
                    if extra != pin.version:
                        pin_steps.append(sim.archive(pin, env, ranks, extra))
        if env.alias and sim.aliases.get(env.alias) != pin.version:
            pin_steps.append(sim.set_alias(pin, env, ranks))
        if pin_steps:
            status: EntryStatus = "change"
        else:
            status = "promoted_onward" if onward_to else "in_sync"
        entries.append(
            Entry(pin, env.target(), status, before, tuple(pin_steps), onward_to=onward_to)
        )
    return entries


def _pin_problem(pin: Pin, registered: RegisteredModel | None) -> Problem | None:
    if registered is None:
        return Problem(pin.file, pin.line, "model", f"registered model {pin.model!r} not found")
    version = registered.versions.get(pin.version)
    if version is None:
        known = sorted(registered.versions, key=int)
        latest = f" (latest is v{known[-1]})" if known else " (it has no versions)"
        return Problem(
            pin.file,
            pin.version_line,
            "version",
            f"{pin.model} v{pin.version} not found in the registry{latest}",
        )
    if version.status != READY:
        return Problem(
            pin.file,
            pin.version_line,
            "version",
            f"{pin.model} v{pin.version} is {version.status}, not READY",
        )
    if pin.run_id is not None and version.run_id != pin.run_id:
        return Problem(
            pin.file,
            pin.run_id_line,
            "run_id",
            f"{pin.model} v{pin.version} comes from run {version.run_id or '(none)'}, "
            f"not {pin.run_id}",
        )
    return None


class _Simulation:
    """A scratch copy of one model's stages and aliases that the planned steps are applied to."""

    def __init__(self, registered: RegisteredModel | None) -> None:
        self.stages = {
            v.version: v.stage for v in (registered.versions if registered else {}).values()
        }
        self.aliases = dict(registered.aliases) if registered else {}
        self.sequence = 0

    def stage_of(self, version: str) -> str | None:
        return self.stages.get(version)

    def in_stage(self, stage: str) -> list[str]:
        return sorted((v for v, s in self.stages.items() if s == stage), key=int)

    def current(self, env: Environment) -> tuple[str, ...]:
        if env.stage:
            return tuple(self.in_stage(env.stage))
        target = self.aliases.get(env.alias or "")
        return (target,) if target else ()

    def _step(self, pin: Pin, env: Environment, ranks: Mapping[str, int], **fields: object) -> Step:
        self.sequence += 1
        return Step(
            environment=env.name,
            model=pin.model,
            rank=ranks[env.name],
            sequence=self.sequence,
            **fields,  # type: ignore[arg-type]
        )

    def transition(self, pin: Pin, env: Environment, ranks: Mapping[str, int]) -> Step:
        assert env.stage is not None
        archives = tuple(v for v in self.in_stage(env.stage) if v != pin.version)
        expect = ((pin.version, self.stages[pin.version]), *((v, env.stage) for v in archives))
        for version in archives:
            self.stages[version] = ARCHIVED
        self.stages[pin.version] = env.stage
        return self._step(
            pin,
            env,
            ranks,
            kind="transition",
            version=pin.version,
            stage=env.stage,
            archives=archives,
            expect=expect,
        )

    def archive(self, pin: Pin, env: Environment, ranks: Mapping[str, int], version: str) -> Step:
        expect = ((version, self.stages[version]),)
        self.stages[version] = ARCHIVED
        return self._step(
            pin, env, ranks, kind="archive", version=version, stage=env.stage, expect=expect
        )

    def set_alias(self, pin: Pin, env: Environment, ranks: Mapping[str, int]) -> Step:
        assert env.alias is not None
        previous = self.aliases.get(env.alias)
        self.aliases[env.alias] = pin.version
        return self._step(
            pin,
            env,
            ranks,
            kind="set_alias",
            version=pin.version,
            alias=env.alias,
            previous=previous,
        )


def _unmanaged(
    desired: DesiredState,
    actual: ActualState,
    env_scope: set[str],
    model_scope: set[str] | None,
) -> tuple[Unmanaged, ...]:
    pinned = {(pin.environment, pin.model) for pin in desired.pins}
    found = []
    for env in desired.environments_by_rank():
        if env.name not in env_scope:
            continue
        for name in sorted(actual.models):
            if (env.name, name) in pinned or (model_scope is not None and name not in model_scope):
                continue
            registered = actual.models[name]
            holders: list[str] = registered.in_stage(env.stage) if env.stage else []
            if env.alias and env.alias in registered.aliases:
                holders.append(registered.aliases[env.alias])
            if holders:
                found.append(Unmanaged(env.name, name, env.target(), tuple(dict.fromkeys(holders))))
    return tuple(found)


def _versions(versions: Iterable[str]) -> str:
    return ", ".join(f"v{v}" for v in versions)
