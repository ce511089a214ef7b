"""`reconciler import`, the pure part: which pins a live registry implies. ActualState and the
environments in, pins to write and models skipped out; no I/O, no clock.

A stage environment pins the version its stage holds; an alias-only environment pins its alias.
Where the registry disagrees with what one pin can say (two versions in a stage, an alias beside
the stage on another version), the pin takes the version that serves by stage, moved in last, and
the notes say what `plan` will then change, so adopting never hides drift.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from reconciler.pins.values import Environment
from reconciler.records.bookkeeping import LEGACY_STATE_MODEL
from reconciler.registry.values import READY, ActualState, ModelVersion, RegisteredModel


@dataclass(frozen=True)
class ImportPin:
    """A pin the registry implies: `model` at `version` in `environment`."""

    environment: str
    model: str
    version: str
    run_id: str | None
    notes: tuple[str, ...] = ()  # what `plan` will change after this pin is committed


@dataclass(frozen=True)
class ImportSkip:
    """A model that holds the environment's stage or alias but gets no pin, and why."""

    environment: str
    model: str
    reason: str


@dataclass(frozen=True)
class Imported:
    pins: tuple[ImportPin, ...]
    skipped: tuple[ImportSkip, ...]


def candidates(actual: ActualState, environments: Iterable[Environment]) -> set[str]:
    """Models holding a stage or alias of `environments`, from a read that may carry only the
    latest version per stage: these need all their versions read before `pins_from_registry`."""
    envs = list(environments)
    return {
        name
        for name, registered in actual.models.items()
        if name != LEGACY_STATE_MODEL and any(_holds(env, registered) for env in envs)
    }


def pins_from_registry(
    actual: ActualState,
    environments: Iterable[Environment],
    models: Collection[str] | None = None,
) -> Imported:
    """For each environment (highest first) and model (by name), the pin that says what the
    registry serves there now. `actual` must hold every version of the models concerned."""
    pins: list[ImportPin] = []
    skipped: list[ImportSkip] = []
    for env in sorted(environments, key=lambda e: e.rank):
        for name in sorted(actual.models):
            if name == LEGACY_STATE_MODEL or (models is not None and name not in models):
                continue
            found = _pin(env, actual.models[name])
            if isinstance(found, ImportSkip):
                skipped.append(found)
            elif found is not None:
                refusal = name_refusal(name)
                if refusal:
                    skipped.append(ImportSkip(env.name, name, refusal))
                else:
                    pins.append(found)
        for name, prompt in sorted(actual.prompts.items()):
            if (models is None or name in models) and _holds(env, prompt):
                skipped.append(ImportSkip(env.name, name, PROMPT_SKIPPED))
    return Imported(tuple(pins), tuple(skipped))


PROMPT_SKIPPED = "a prompt (MLflow Prompt Registry): reconciler does not manage prompts"


def _holds(env: Environment, registered: RegisteredModel) -> bool:
    """Whether `registered` holds the environment's stage or alias."""
    return bool(
        (env.stage and registered.in_stage(env.stage))
        or (env.alias and env.alias in registered.aliases)
    )


def name_refusal(model: str) -> str | None:
    """Why `model` cannot have a pin file at all (MLflow allows it; a file name cannot hold it),
    or None. What the file's validation refuses beyond this is found by validating it."""
    if "/" in model:
        return "the name holds '/', which a pin's file name cannot; reconciler cannot manage it"
    if "\x00" in model:
        return "the name holds a NUL character, which a file name cannot"
    if len(f"{model}.yaml".encode()) > 255:
        return "the name is too long for a file name (255 bytes with .yaml)"
    return None


def _pin(env: Environment, registered: RegisteredModel) -> ImportPin | ImportSkip | None:
    alias_target = registered.aliases.get(env.alias) if env.alias else None
    if env.stage is None:
        if alias_target is None:
            return None
        version = registered.versions.get(alias_target)
        return _checked(env, registered, version, alias_target, ())
    holders = [registered.versions[v] for v in registered.in_stage(env.stage)]
    if not holders:
        if alias_target is not None:
            return ImportSkip(
                env.name,
                registered.name,
                f"@{env.alias} is on v{alias_target} but nothing is in {env.stage}; a pin "
                f"would move v{alias_target} into {env.stage}, so none was written",
            )
        return None
    # The one moved in last serves (a transition sets last_updated_timestamp); on a tie, the
    # higher version. Only a READY version can be pinned (plan refuses the others): a version
    # still registering beside a READY one is reported, not a reason to skip the model.
    ready = [v for v in holders if v.status == READY]
    chosen = max(ready or holders, key=lambda v: (v.updated or 0, int(v.version)))
    notes = []
    others = [v.version for v in ready if v.version != chosen.version]
    if others:
        notes.append(
            f"{env.stage} also holds {_versions(others)}: plan will archive "
            f"{'it' if len(others) == 1 else 'them'} (v{chosen.version} was moved in last)"
        )
    unready = [v for v in holders if v.status != READY and v.version != chosen.version]
    if ready and unready:
        listed = ", ".join(f"v{v.version} ({v.status}, not READY, so not pinned)" for v in unready)
        notes.append(
            f"{env.stage} also holds {listed}: plan will archive "
            f"{'it' if len(unready) == 1 else 'them'}"
        )
    if env.alias and alias_target != chosen.version:
        where = f"from v{alias_target}" if alias_target else "(not set now)"
        notes.append(f"plan will move @{env.alias} {where} to v{chosen.version}")
    return _checked(env, registered, chosen, chosen.version, tuple(notes))


def _checked(
    env: Environment,
    registered: RegisteredModel,
    version: ModelVersion | None,
    number: str,
    notes: tuple[str, ...],
) -> ImportPin | ImportSkip:
    if version is None:
        return ImportSkip(
            env.name, registered.name, f"@{env.alias} points at v{number}, which does not exist"
        )
    if version.status != READY:
        return ImportSkip(
            env.name,
            registered.name,
            f"v{number} is {version.status}, not READY; plan would refuse a pin on it",
        )
    return ImportPin(env.name, registered.name, version.version, version.run_id, notes)


def _versions(versions: Iterable[str]) -> str:
    return ", ".join(f"v{v}" for v in versions)
