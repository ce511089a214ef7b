"""`reconciler promote`: edit or create a pin the way a person would, choosing the version
from the promotion order or the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.desired import load_desired_state
from reconciler.errors import (
    InvalidInput,
    UsageError,
)
from reconciler.registry.base import Registry
from reconciler.state import STAGING, DesiredState, Environment, Pin


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
) -> PromoteResult:
    """Edit (or create) the pin of `model` in `environment`, keeping the file's comments and
    layout. Without `version`: the version pinned in the previous environment of the promotion
    order, else the registry's latest Staging version (the promote-model seed's fallback)."""
    from reconciler import gitrepo, pinfile
    from reconciler.desired import DEFAULT_ENVIRONMENTS, ENVIRONMENTS_DIR

    desired = load_desired_state(root)
    env = desired.environments.get(environment) or DEFAULT_ENVIRONMENTS.get(environment)
    if env is None:
        known = ", ".join(sorted(desired.environments)) or "none"
        raise UsageError(f"--to {environment!r}: no such environment (have: {known})")
    pins = {(p.environment, p.model): p for p in desired.pins}
    current = pins.get((environment, model))
    if version is not None:
        source = "--version"
    else:
        version, source = version_to_promote(desired, env, model, pins, registry_factory)
    if not version.isdigit() or int(version) < 1:
        raise UsageError(f"--version {version!r}: a version is a positive integer")
    version = str(int(version))
    path = (
        root / current.file if current else root / ENVIRONMENTS_DIR / environment / f"{model}.yaml"
    )
    display = path.relative_to(root).as_posix()
    already = (
        current is not None
        and current.version == version
        and (confidence is None or current.confidence == confidence)
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
    )
    if already:
        return result
    try:
        if branch:
            gitrepo.checkout_new_branch(root, branch)
    except ValueError as error:
        raise UsageError(f"--branch {branch!r}: {error}") from None
    before = path.read_text(encoding="utf-8") if path.exists() else None
    if before is None:
        text = pinfile.new_pin(model, version, confidence)
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        text = pinfile.set_key(before, "version", version)
        if confidence is not None:
            text = pinfile.set_key(text, "confidence", f"{confidence:g}")
    path.write_text(text, encoding="utf-8")
    try:
        load_desired_state(root, [path])
    except InvalidInput:
        # Never leave a broken pin behind: put the file back as it was.
        if before is None:
            path.unlink()
        else:
            path.write_text(before, encoding="utf-8")
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
    return PromoteResult(**{**result.__dict__, "branch": branch, "commit": sha})


def version_to_promote(
    desired: DesiredState,
    env: Environment,
    model: str,
    pins: dict[tuple[str, str], Pin],
    registry_factory: Callable[[], Registry],
) -> tuple[str, str]:
    previous_env = env.requires or ("staging" if env.name == "production" else None)
    if previous_env and (previous_env, model) in pins:
        return pins[(previous_env, model)].version, f"pinned in {previous_env}"
    registered = registry_factory().read_model(model)
    staged = registered.in_stage(STAGING) if registered else []
    if not staged:
        raise UsageError(
            f"no version to promote: {model} has no pin in "
            f"{previous_env or 'a previous environment'} and no Staging version in the registry; "
            "name one with --version"
        )
    return staged[-1], "latest Staging version in the registry"
