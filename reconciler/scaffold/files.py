"""The files of a new promotion repository and writing them: each is created when missing and
never overwritten, so a second run changes nothing and a team's edits stay."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from reconciler.errors import ReconcilerError
from reconciler.scaffold.project import ACTION_REPOSITORY, SECRETS, VERSION

WORKFLOWS = ("pr", "reconcile", "drift", "promote", "propose")
SCHEMAS = ("pin", "environment", "defaults")
ENVIRONMENTS = ("staging", "production")
# Where the tool's version is pinned in a scaffold (the action's `uses:` and the hook's `rev:`).
PINNED_IN = (".github/actions/reconciler/action.yml", ".pre-commit-config.yaml")


@dataclass
class Outcome:
    root: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # existed already: left as they are
    git_initialized: bool = False


def _template(*parts: str) -> str:
    text = resources.files("reconciler.scaffold").joinpath("templates", *parts)
    return text.read_text(encoding="utf-8")


def _pinned(text: str) -> str:
    return text.replace("@ACTION_REPOSITORY@", ACTION_REPOSITORY).replace("@VERSION@", VERSION)


def readme() -> str:
    rows = "\n".join(f"| `{name}` | {what} |" for name, what in SECRETS)
    return _pinned(_template("README.md").replace("@SECRETS@", rows))


def planned(workspace: str | None) -> dict[str, str]:
    """Every file of the scaffold, by its path relative to the repository root."""
    files = {
        f"environments/{env}.yaml": _template("environments", f"{env}.yaml") for env in ENVIRONMENTS
    }
    files.update({f"environments/{env}/.gitkeep": "" for env in ENVIRONMENTS})
    if workspace is not None:
        files["environments/_defaults.yaml"] = _template("defaults.yaml").replace(
            "@WORKSPACE@", workspace
        )
    for schema in SCHEMAS:
        name = f"{schema}.schema.json"
        files[f"schemas/{name}"] = (
            resources.files("reconciler").joinpath("schemas", name).read_text(encoding="utf-8")
        )
    for workflow in WORKFLOWS:
        files[f".github/workflows/{workflow}.yml"] = _template("workflows", f"{workflow}.yml")
    files[".github/actions/reconciler/action.yml"] = _pinned(_template("action.yml"))
    files[".github/zizmor.yml"] = _pinned(_template("zizmor.yml"))
    files[".github/CODEOWNERS"] = _template("CODEOWNERS")
    files[".pre-commit-config.yaml"] = _pinned(_template("pre-commit-config.yaml"))
    files["README.md"] = readme()
    return files


def workspace_problem(workspace: str) -> str | None:
    """Why `workspace` cannot be a workspace name (the defaults schema's rule), or None."""
    schema = json.loads(
        resources.files("reconciler").joinpath("schemas", "defaults.schema.json").read_text()
    )
    rule = schema["properties"]["workspace"]
    if len(workspace) <= rule["maxLength"] and re.fullmatch(rule["pattern"], workspace):
        return None
    return f"{workspace!r} is not a workspace name: {rule['description']}"


def write(root: Path, files: dict[str, str]) -> Outcome:
    """Create each missing file; keep every existing one (a symlink or folder in the way too)."""
    outcome = Outcome(root)
    for relative, text in files.items():
        path = root / relative
        if path.exists() or path.is_symlink():
            outcome.kept.append(relative)
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
        except OSError as error:  # a file where a folder goes, no permission, a full disk
            raise ReconcilerError(
                f"{relative}: cannot write it: {error.strerror or error}"
            ) from None
        outcome.created.append(relative)
    return outcome
