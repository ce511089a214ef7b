"""`diff(desired, actual) -> Plan`: the pure core. No I/O, no clock, deterministic.

Per model, environments are walked highest first (Production, Staging, alias-only) against a
simulated copy of the registry, so each step is computed on the state the previous steps leave.
That makes the plan exact for chains such as a swap (production takes staging's version while
staging takes production's) and keeps Production occupied at every point of the apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.errors import Problem
from reconciler.pins.values import (
    DEFAULT_ENVIRONMENTS,
    DEFAULT_STAGE,
    STAGE_RANK,
    DesiredState,
    Environment,
    Pin,
)
from reconciler.planning.steps import Entry, EntryStatus, Plan, Retirement, Step, Unmanaged
from reconciler.records.bookkeeping import ModelState, state_of
from reconciler.registry.values import ARCHIVED, READY, ActualState, RegisteredModel


def diff(
    desired: DesiredState,
    actual: ActualState,
    environments: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
    prune: bool = False,
    owner: str | None = None,
) -> Plan:
    """The steps that make `actual` match `desired`, limited to the named environments/models.
    Retirements (pins removed from models `owner`, this repository, manages) become steps where
    `prune` or the environment's setting allows."""
    # One reading of each model's state tag: where this repository manages it, who owns it.
    states = {name: state_of(model) for name, model in actual.models.items()}
    ours = _managed_here(states, owner)
    known = [*desired.environments_by_rank(), *_vacated(desired, ours)]
    known.sort(key=lambda env: env.rank)
    env_scope = set(environments) if environments is not None else {env.name for env in known}
    model_scope = set(models) if models is not None else None
    ranks = {env.name: i for i, env in enumerate(known)}

    by_model: dict[str, list[Pin]] = {}
    for pin in desired.pins:
        by_model.setdefault(pin.model, []).append(pin)
    # Models that lost their pin where reconciler managed them: candidates for retirement.
    owned = {name for name, envs in ours.items() if envs & env_scope}

    entries: list[Entry] = []
    retirements: list[Retirement] = []
    for model in sorted(set(by_model) | owned):
        if model_scope is not None and model not in model_scope:
            continue
        walk = _ModelWalk(
            known,
            ranks,
            by_model.get(model, []),
            actual.models.get(model),
            env_scope,
            prune,
            ours.get(model, set()),
            states.get(model, ModelState()),
            prompt=model in actual.prompts,
        )
        entries.extend(walk.entries)
        retirements.extend(walk.retirements)

    steps = [step for entry in entries for step in entry.steps]
    steps += [step for r in retirements if r.enabled for step in r.steps]
    problems = tuple(sorted(e.problem for e in entries if e.problem is not None))
    retiring = {(r.environment, r.model) for r in retirements}
    unmanaged = tuple(
        u
        for u in _unmanaged(desired, actual, env_scope, model_scope)
        if (u.environment, u.model) not in retiring
    )
    entries.sort(key=lambda e: (ranks[e.pin.environment], e.pin.model))
    steps.sort(key=lambda s: s.order_key)
    unreadable = tuple(
        (name, problem)
        for name in sorted({e.pin.model for e in entries})
        if (problem := states.get(name, ModelState()).unreadable) is not None
    )
    return Plan(
        tuple(entries),
        tuple(steps),
        unmanaged,
        problems,
        tuple(retirements),
        repository=owner,
        unreadable=unreadable,
    )


def _managed_here(states: Mapping[str, ModelState], owner: str | None) -> dict[str, set[str]]:
    """Per model, the environments whose recorded owner is `owner` (this repository)."""
    if owner is None:
        return {}
    found = {}
    for name, state in states.items():
        envs = {env for env, r in state.environments.items() if r.owner == owner}
        if envs:
            found[name] = envs
    return found


def _vacated(desired: DesiredState, ours: Mapping[str, set[str]]) -> list[Environment]:
    """Default environments (no settings file) gone with their last pin file while this
    repository still manages models there: kept, so that those models are listed for
    retirement rather than silently forgotten."""
    stages = {env.stage for env in desired.environments.values() if env.stage}
    return [
        env
        for name, env in DEFAULT_ENVIRONMENTS.items()
        if name not in desired.environments
        and env.stage not in stages
        and any(name in envs for envs in ours.values())
    ]


class _ModelWalk:
    """One model through the environments in scope, highest first, against one simulation: the
    steps of each environment are computed on the state the steps before leave, in the order
    apply runs them, so every step's expectations (compare-and-set) hold when it runs."""

    def __init__(
        self,
        environments: list[Environment],
        ranks: Mapping[str, int],
        pins: list[Pin],
        registered: RegisteredModel | None,
        env_scope: set[str],
        prune: bool,
        ours: set[str],  # the environments where this repository manages the model
        state: ModelState,  # the model's state tag, as read
        prompt: bool = False,  # the name is an MLflow prompt's, not a registered model's
    ) -> None:
        self.prompt = prompt
        self.entries: list[Entry] = []
        self.records = state.environments
        self.retirements: list[Retirement] = []
        self.stages = {env.name: env.stage for env in environments}
        by_env = {pin.environment: pin for pin in pins}
        # The highest environment pinning a version under a stage owns that version's stage
        # (computed over every pin, in scope or not: scope limits what is written, not meaning).
        self.owner: dict[str, str] = {}
        managed = {env.stage for env in environments if env.stage}
        claims = []
        for env in environments:
            pin = by_env.get(env.name)
            if pin is None:
                continue
            stage = env.stage
            left = _left_stage(env, managed)
            if left is not None and _stage_of(registered, pin.version) == left:
                # Migrated to an alias with its version still in the old stage: it serves there
                # still, so a lower pin on it reads "promoted onward" and never pulls it down.
                stage = left
            if stage:
                claims.append((STAGE_RANK[stage], env.name, pin.version))
        for _rank, env_name, version in sorted(claims):
            self.owner.setdefault(version, env_name)
        self.sim = _Simulation(registered)
        # Reviewers read "what serves now → what will": `current` is the registry before any step.
        self.now = _Simulation(registered)
        for env in environments:
            if env.name not in env_scope:
                continue
            pin = by_env.get(env.name)
            if pin is not None:
                self.entries.append(self._pin(env, pin, ranks, registered))
            elif registered is not None and env.name in ours:
                steps = self.sim.retire(registered.name, env, ranks)
                self.retirements.append(
                    Retirement(env.name, registered.name, steps, prune or env.prune)
                )

    def _pin(
        self,
        env: Environment,
        pin: Pin,
        ranks: Mapping[str, int],
        registered: RegisteredModel | None,
    ) -> Entry:
        sim = self.sim
        problem = _pin_problem(pin, registered, self.prompt)
        if problem is not None:
            return Entry(pin, env.target(), "error", (), problem=problem)
        before = self.now.current(env)
        pin_steps: list[Step] = []
        onward_to = None
        if env.stage:
            stage_owner = self.owner[pin.version]
            if stage_owner != env.name:
                onward_to = stage_owner
                # The version serves higher up; this stage keeps nothing else (the version
                # itself stays put if the higher environment is out of scope and has not taken it).
                for extra in sim.in_stage(env.stage):
                    if extra != pin.version:
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
        elif onward_to is None:
            status = "in_sync"
        elif self.now.stage_of(pin.version) == self.stages[onward_to]:
            status = "promoted_onward"
        else:
            status = "onward_pending"  # the higher pin's change (in this plan or not) moves it
        return Entry(
            pin,
            env.target(),
            status,
            before,
            tuple(pin_steps),
            onward_to=onward_to,
            record=self.records.get(env.name),
        )


def _left_stage(env: Environment, managed: set[str]) -> str | None:
    """The stage an alias-only `staging`/`production` gave up (`stage: null`) and no environment
    manages now: left as it is, shown as unmanaged."""
    left = DEFAULT_STAGE.get(env.name) if env.stage is None else None
    return left if left is not None and left not in managed else None


def _stage_of(registered: RegisteredModel | None, version: str) -> str | None:
    found = registered.versions.get(version) if registered else None
    return found.stage if found else None


def _pin_problem(pin: Pin, registered: RegisteredModel | None, prompt: bool) -> Problem | None:
    if registered is None and prompt:
        return Problem(pin.file, pin.line, "model", prompt_refusal(pin.model))
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


def prompt_refusal(model: str) -> str:
    """What every command says of a pin naming an MLflow prompt."""
    return (
        f"{model!r} is a prompt (MLflow Prompt Registry), not a registered model: reconciler "
        "does not manage prompts or their aliases; remove this pin"
    )


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
        return self._model_step(pin.model, env, ranks, **fields)

    def _model_step(
        self, model: str, env: Environment, ranks: Mapping[str, int], **fields: object
    ) -> Step:
        self.sequence += 1
        return Step(
            environment=env.name,
            model=model,
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

    def retire(self, model: str, env: Environment, ranks: Mapping[str, int]) -> tuple[Step, ...]:
        """The pin is gone: archive what the model has in the environment's stage, remove the
        environment's alias, drop the ownership record. Versions are never deleted."""
        steps = []
        for version in self.in_stage(env.stage) if env.stage else []:
            self.stages[version] = ARCHIVED
            steps.append(
                self._model_step(
                    model, env, ranks, kind="retire", version=version, stage=env.stage,
                    expect=((version, env.stage),),
                )
            )  # fmt: skip
        if env.alias and env.alias in self.aliases:
            target = self.aliases.pop(env.alias)
            steps.append(
                self._model_step(
                    model, env, ranks, kind="remove_alias", version=target, alias=env.alias,
                    previous=target,
                )
            )  # fmt: skip
        steps.append(self._model_step(model, env, ranks, kind="disown", version=""))
        return tuple(steps)

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
    managed_stages = {env.stage for env in desired.environments.values() if env.stage}
    found = []
    for env in desired.environments_by_rank():
        if env.name not in env_scope:
            continue
        left = _left_stage(env, managed_stages)
        if left is not None:
            # Migrated to an alias (`stage: null`): the stage keeps what it holds, untouched;
            # shown for every model, pinned or not, so nobody forgets what still serves by it.
            for name in sorted(actual.models):
                held = actual.models[name].in_stage(left)
                if held and (model_scope is None or name in model_scope):
                    found.append(Unmanaged(env.name, name, left, tuple(held)))
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
