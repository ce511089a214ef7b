"""`reconciler promote`: edit or create a pin the way a person would, choosing the version
from the promotion order or the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler.errors import (
    InvalidInput,
    Problem,
    UsageError,
)
from reconciler.pins.desired import load_desired_state
from reconciler.pins.values import STAGING, DesiredState, Environment, Pin
from reconciler.pins.versions import parse_version
from reconciler.planning.plan import prompt_refusal
from reconciler.registry.base import Registry
from reconciler.registry.values import READY, RegisteredModel


@dataclass(frozen=True)
class PromoteResult:
    model: str
    environment: str
    file: str
    new_version: str
    previous_version: str | None
    target: str
    already_promoted: bool
    source: str  # where the version came from
    confidence: float | None = None
    branch: str | None = None
    commit: str | None = None
    offline: bool = False  # the registry was not asked whether the version exists
    dropped: tuple[str, ...] = ()  # keys removed because they spoke of the previous version

    def record(self) -> dict[str, object]:
        """The promote-model seed's record, versions as strings, plus where things went."""
        return {
            "model_name": self.model,
            "environment": self.environment,
            "new_version": self.new_version,
            "new_stage": self.target.split(" + ")[0],
            "archived_version": None if self.already_promoted else self.previous_version,
            "promoted": not self.already_promoted,
            "already_promoted": self.already_promoted,
            "file": self.file,
            "version_from": self.source,
            "confidence": self.confidence,
            "branch": self.branch,
            "commit": self.commit,
            "checked_in_registry": not self.offline,
            "dropped": list(self.dropped),
        }


def promote(
    root: Path,
    registry_factory: Callable[[], Registry],
    model: str,
    environment: str,
    version: str | None = None,
    confidence: float | None = None,
    branch: str | None = None,
    commit: bool = False,
    note: str | None = None,
    offline: bool = False,
) -> PromoteResult:
    """Edit (or create) the pin of `model` in `environment`, keeping the file's comments and
    layout. Without `version`: the version pinned in the previous environment of the promotion
    order, else the registry's latest Staging version (the promote-model seed's fallback).
    Unless `offline`, the version must exist in the registry and be READY: a pin the plan would
    refuse is never written."""
    from reconciler import gitrepo
    from reconciler.pins import pinfile
    from reconciler.pins.desired import ENVIRONMENTS_DIR
    from reconciler.pins.values import DEFAULT_ENVIRONMENTS

    if commit or branch:
        gitrepo.check_pins_tracked(root)  # a commit here would not hold the pin
    desired = load_desired_state(root)
    env = desired.environments.get(environment) or DEFAULT_ENVIRONMENTS.get(environment)
    if env is None:
        known = ", ".join(sorted(desired.environments)) or "none"
        raise UsageError(f"--to {environment!r}: no such environment (have: {known})")
    pins = {(p.environment, p.model): p for p in desired.pins}
    current = pins.get((environment, model))
    if version is not None:
        try:
            version = parse_version(version)  # bad input fails before the registry is asked
        except ValueError as error:
            raise UsageError(f"--version: {error}") from None
    # A pin in an environment whose models live in another registry than the previous
    # environment's takes that environment's version by copy (`from:`); the version is then a
    # number of the previous environment's registry, and only the command's registry is asked.
    copied_from = copied_from_environment(desired, env)
    numbered_in = copied_from or environment
    unchecked = not offline and not in_command_registry(desired, numbered_in)
    offline = offline or unchecked
    # One read, unless offline: the Staging fallback and the existence check share it.
    registry = None if offline else registry_factory()
    if registry is not None:
        registry.use_workspace(desired.workspace)  # the model this repository's workspace holds
    registered = registry.read_model(model) if registry is not None else None
    if registry is not None and registered is None and registry.read_prompts([model]):
        refusal = prompt_refusal(model)
        if current is not None:
            raise InvalidInput([Problem(current.file, current.line, "model", refusal)])
        raise UsageError(refusal)
    if version is not None:
        source = "--version"
    else:
        version, source = version_to_promote(env, model, pins, registered, offline)
    if not offline:
        check_version(registered, model, version)
    run_id = _run_id(registered, version)
    path = (
        root / current.file if current else root / ENVIRONMENTS_DIR / environment / f"{model}.yaml"
    )
    display = path.relative_to(root).as_posix()
    already = (
        current is not None
        and current.version == version
        and (confidence is None or current.confidence == confidence)
        and (note is None or current.note == note)
    )
    result = PromoteResult(
        model=model,
        environment=environment,
        file=display,
        new_version=version,
        previous_version=current.version if current else None,
        target=env.target(),
        already_promoted=already,
        source=source,
        confidence=confidence
        if confidence is not None
        else (current.confidence if current else None),
        offline=offline,
    )
    if already:
        return result
    try:
        if branch:
            gitrepo.checkout_new_branch(root, branch)
    except ValueError as error:
        raise UsageError(f"--branch {branch!r}: {error}") from None
    raw = path.read_bytes() if path.exists() else None  # put back byte for byte if refused
    before = path.read_text(encoding="utf-8") if path.exists() else None
    dropped: list[str] = []
    if before is None:
        text = pinfile.new_pin(
            model,
            version,
            run_id=run_id,
            confidence=confidence,
            note=note,
            schema_comment=(root / pinfile.SCHEMA_PATH).is_file(),
            source=copied_from,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        if pinfile.is_flow_style(before):
            raise InvalidInput(
                [
                    Problem(
                        display,
                        1,
                        None,
                        "promote edits pins written one key per line; this one is a flow "
                        "mapping ({...}): write it as `model: …` and `version: …` lines, or "
                        "edit it by hand",
                    )
                ]
            )
        text, dropped = _edit(before, current, version, run_id, confidence, note, offline)
        if copied_from is not None:
            text = pinfile.set_key(text, "from", copied_from)
    ending = pinfile.line_ending(raw) if raw is not None else "\n"
    path.write_text(text, encoding="utf-8", newline=ending)
    try:
        load_desired_state(root, [path])
    except InvalidInput:
        # Never leave a broken pin behind: put the file back as it was.
        if raw is None:
            path.unlink()
        else:
            path.write_bytes(raw)
        raise
    sha = None
    if commit or branch:
        was = f" (was v{current.version})" if current else ""
        message = f"Promote {model} v{version} to {environment}{was}"
        if confidence is not None:
            message += f"\n\nComparison confidence: {confidence:g}"
        try:
            sha = gitrepo.commit_files(root, [path], message)
        except ValueError as error:
            raise UsageError(f"--commit: {error}") from None
    return replace(result, branch=branch, commit=sha, dropped=tuple(dropped))


def _edit(
    before: str,
    current: Pin | None,
    version: str,
    run_id: str | None,
    confidence: float | None,
    note: str | None,
    offline: bool,
) -> tuple[str, list[str]]:
    """The existing pin moved to `version`; what spoke of the old version goes or follows:
    `run_id` becomes the new version's (dropped offline, where it cannot be known), a `note:`
    is replaced by `note` or dropped. Returns the text and what was dropped, to say so."""
    from reconciler.pins import pinfile

    text = pinfile.set_key(before, "version", version)
    dropped: list[str] = []
    changed = current is None or current.version != version
    if changed and pinfile.has_key(text, "run_id"):
        if run_id is not None:
            text = pinfile.set_key(text, "run_id", pinfile.yaml_scalar(run_id))
        else:
            text = pinfile.remove_key(text, "run_id")
            dropped.append(
                "run_id (offline: the new version's run is not known)" if offline else "run_id"
            )
    if confidence is not None:
        text = pinfile.set_key(text, "confidence", f"{confidence:g}")
    if note is not None:
        text = pinfile.set_key(text, "note", pinfile.yaml_scalar(note))
    elif changed and pinfile.has_key(text, "note"):
        text = pinfile.remove_key(text, "note")
        dropped.append("note (it spoke of the previous version; --note sets a new one)")
    return text, dropped


def check_version(registered: RegisteredModel | None, model: str, version: str) -> None:
    """A UsageError naming what exists when `model` v`version` cannot be pinned."""
    if registered is None:
        raise UsageError(f"registered model {model!r} not found in the registry")
    ready = sorted((v.version for v in registered.versions.values() if v.status == READY), key=int)
    have = f"READY versions: {_listed(ready)}" if ready else "it has no READY version"
    found = registered.versions.get(version)
    if found is None:
        raise UsageError(f"{model} v{version} not found in the registry ({have})")
    if found.status != READY:
        raise UsageError(f"{model} v{version} is {found.status}, not READY ({have})")


def _listed(versions: list[str], most: int = 10) -> str:
    shown = [f"v{v}" for v in versions[-most:]]
    more = f"… and {len(versions) - most} older, " if len(versions) > most else ""
    return more + ", ".join(shown)


def _run_id(registered: RegisteredModel | None, version: str) -> str | None:
    found = registered.versions.get(version) if registered else None
    return found.run_id if found else None


def copied_from_environment(desired: DesiredState, env: Environment) -> str | None:
    """The previous environment of the promotion order when it keeps its models in another
    registry (its versions reach `env` by copy), else None."""
    from reconciler.planning.sites import site_key

    previous = env.requires or ("staging" if env.name == "production" else None)
    found = desired.environments.get(previous) if previous else None
    if found is None:
        return None
    if site_key(found, desired.workspace) == site_key(env, desired.workspace):
        return None
    return found.name


def in_command_registry(desired: DesiredState, environment: str) -> bool:
    """Whether `environment` lives in the command's registry (and the repository's workspace):
    the one registry `promote` asks."""
    from reconciler.planning.sites import site_key

    env = desired.environments.get(environment)
    return env is None or site_key(env, desired.workspace) == site_key(None, desired.workspace)


def version_to_promote(
    env: Environment,
    model: str,
    pins: dict[tuple[str, str], Pin],
    registered: RegisteredModel | None,
    offline: bool = False,
) -> tuple[str, str]:
    previous_env = env.requires or ("staging" if env.name == "production" else None)
    if previous_env and (previous_env, model) in pins:
        return pins[(previous_env, model)].version, f"pinned in {previous_env}"
    if offline:
        raise UsageError(
            f"no version to promote: {model} has no pin in "
            f"{previous_env or 'a previous environment'}, and --offline cannot ask the "
            "registry for its latest Staging version; name one with --version"
        )
    staged = registered.in_stage(STAGING) if registered else []
    if not staged:
        raise UsageError(
            f"no version to promote: {model} has no pin in "
            f"{previous_env or 'a previous environment'} and no Staging version in the registry; "
            "name one with --version"
        )
    return staged[-1], "latest Staging version in the registry"
