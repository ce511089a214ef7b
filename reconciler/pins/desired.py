"""Reads `environments/` into a DesiredState, or reports every problem at once.

Layout:
    environments/<env>/<model>.yaml   one pin per registered model (see schemas/pin.schema.json)
    environments/<env>.yaml           optional settings for <env> (schemas/environment.schema.json)

Settings live beside the folder, not in it, so no model name is reserved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import InvalidInput, Problem
from reconciler.pins.defaults import DEFAULTS_STEM, load_defaults
from reconciler.pins.documents import Document, read_document
from reconciler.pins.endpoints import Endpoint, endpoint_problems
from reconciler.pins.gates import Gates, bound_problems
from reconciler.pins.registry_settings import RegistrySetting, registry_problems
from reconciler.pins.schema_validation import ENVIRONMENT_SCHEMA, PIN_SCHEMA, schema_problems
from reconciler.pins.values import (
    DEFAULT_ENVIRONMENTS,
    DesiredState,
    Environment,
    Pin,
    filterable_name,
)
from reconciler.pins.versions import parse_version

ENVIRONMENTS_DIR = "environments"
YAML_SUFFIXES = (".yaml", ".yml")
_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass
class _Files:
    pins: dict[str, list[Path]]  # environment → pin files
    settings: dict[str, Path]  # environment → settings file
    defaults: Path | None = None  # environments/_defaults.yaml: the repository's settings


def load_desired_state(root: Path, paths: Sequence[Path] = ()) -> DesiredState:
    """Validate `paths` (default: all of `environments/`) and return what they pin.

    Raises InvalidInput listing every problem found, sorted by file and line.
    """
    environments_dir = root / ENVIRONMENTS_DIR
    problems: list[Problem] = []
    if paths:
        files = _classify(root, _expand(paths, problems), problems)
    else:
        if not environments_dir.is_dir():
            raise InvalidInput([Problem(ENVIRONMENTS_DIR, None, None, "folder not found")])
        files = _discover(root, environments_dir, problems)

    environments = _load_environments(root, environments_dir, files, problems)
    workspace = None
    if files.defaults is not None:
        display = display_path(root, files.defaults)
        workspace = load_defaults(root, files.defaults, display, problems)
    pins: list[Pin] = []
    for env_name, pin_files in sorted(files.pins.items()):
        pins.extend(_load_pins(root, env_name, pin_files, problems))
    _check_sources(pins, _on_disk(environments_dir) | set(environments), problems)
    if problems:
        raise InvalidInput(problems)
    return DesiredState(environments, tuple(sorted(pins, key=_pin_key)), workspace)


def _check_sources(pins: Iterable[Pin], known: set[str], problems: list[Problem]) -> None:
    """`from:` names another environment of this repository."""
    for pin in pins:
        if pin.source is None:
            continue
        if pin.source == pin.environment:
            message = "a version cannot come from its own environment"
        elif pin.source not in known:
            message = f"no environment {pin.source!r} (have: {', '.join(sorted(known))})"
        else:
            continue
        problems.append(Problem(pin.file, pin.source_line, "from", message))


def _pin_key(pin: Pin) -> tuple[str, str]:
    return (pin.environment, pin.model)


def display_path(root: Path, path: Path) -> str:
    """A path as the user knows it: relative to the repository root, with forward slashes."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _discover(root: Path, environments_dir: Path, problems: list[Problem]) -> _Files:
    pins: dict[str, list[Path]] = {}
    settings: dict[str, Path] = {}
    for entry in sorted(environments_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            pins[entry.name] = [
                f for f in sorted(entry.iterdir()) if f.suffix in YAML_SUFFIXES and f.is_file()
            ]
            for nested in sorted(entry.iterdir()):
                if nested.is_dir() and not nested.name.startswith("."):
                    problems.append(
                        Problem(
                            display_path(root, nested),
                            None,
                            None,
                            "folders inside an environment are not read; "
                            "pins go in environments/<env>/<model>.yaml",
                        )
                    )
        elif entry.suffix in YAML_SUFFIXES:
            _add_settings(root, settings, entry, problems)
    files = _Files(pins=pins, settings=settings)
    _take_defaults(files)
    return files


def _expand(paths: Sequence[Path], problems: list[Problem]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
            )
        elif path.exists() or path.is_symlink():
            files.append(path)
        else:
            problems.append(Problem(path.as_posix(), None, None, "no such file"))
    return files


def _classify(root: Path, files: Iterable[Path], problems: list[Problem]) -> _Files:
    """Sort named files into pins and settings by where they stand under environments/."""
    pins: dict[str, list[Path]] = {}
    settings: dict[str, Path] = {}
    for file in files:
        absolute = file if file.is_absolute() else Path.cwd() / file
        absolute = absolute.parent.resolve() / absolute.name
        if absolute.parent.name == ENVIRONMENTS_DIR:
            _add_settings(root, settings, absolute, problems)  # _defaults too: taken below
        elif absolute.parent.parent.name == ENVIRONMENTS_DIR:
            # `m.yaml` beside `m.yml` pins one model twice even when only one of them is named
            # (the pre-commit hook passes the changed files): read its sibling too.
            siblings = [absolute.parent / f"{absolute.stem}{suffix}" for suffix in YAML_SUFFIXES]
            found = pins.setdefault(absolute.parent.name, [])
            for path in [absolute, *(s for s in siblings if s != absolute and s.is_file())]:
                if path not in found:
                    found.append(path)
        else:
            problems.append(
                Problem(
                    display_path(root, absolute),
                    None,
                    None,
                    "not a pin (environments/<env>/<model>.yaml) "
                    "or environment settings (environments/<env>.yaml)",
                )
            )
    classified = _Files({env: sorted(found) for env, found in pins.items()}, settings)
    _take_defaults(classified)
    return classified


def _take_defaults(files: _Files) -> None:
    """The repository defaults file was sorted with the settings files (it stands beside them):
    take it out. `_defaults.yaml` beside `_defaults.yml` is refused by `_add_settings` already."""
    for env_name in [name for name in files.settings if name == DEFAULTS_STEM]:
        files.defaults = files.settings.pop(env_name)


def _add_settings(
    root: Path, settings: dict[str, Path], file: Path, problems: list[Problem]
) -> None:
    env_name = file.stem
    if env_name in settings:
        problems.append(
            Problem(
                display_path(root, file),
                None,
                None,
                f"settings for environment {env_name!r} are also in "
                f"{display_path(root, settings[env_name])}",
            )
        )
        return
    settings[env_name] = file


def _load_environments(
    root: Path, environments_dir: Path, files: _Files, problems: list[Problem]
) -> dict[str, Environment]:
    names = set(files.pins) | set(files.settings)
    # A pin named on the command line is checked against its environment's settings on disk.
    for env_name in files.pins:
        if env_name not in files.settings:
            for suffix in YAML_SUFFIXES:
                candidate = environments_dir / f"{env_name}{suffix}"
                if candidate.is_file():
                    files.settings[env_name] = candidate
                    break

    environments: dict[str, Environment] = {}
    for env_name in sorted(names):
        settings_file = files.settings.get(env_name)
        display = (
            display_path(root, settings_file) if settings_file else f"{ENVIRONMENTS_DIR}/{env_name}"
        )
        if not _ENVIRONMENT_NAME.match(env_name):
            problems.append(
                Problem(
                    display,
                    None,
                    None,
                    f"environment name {env_name!r} must start with a letter or digit and hold "
                    "only letters, digits, '.', '_' and '-'",
                )
            )
            continue
        if settings_file is None:
            default = DEFAULT_ENVIRONMENTS.get(env_name)
            if default is None:
                problems.append(
                    Problem(
                        display,
                        None,
                        None,
                        f"environment {env_name!r} needs settings: create "
                        f"{ENVIRONMENTS_DIR}/{env_name}.yaml with `stage:` and/or `alias:`",
                    )
                )
                continue
            environments[env_name] = default
            continue
        environment = _load_environment(root, env_name, settings_file, problems)
        if environment is not None:
            environments[env_name] = environment
    _check_environment_conflicts(root, environments, files, problems)
    _check_requirements(environments, _on_disk(environments_dir) | set(environments), problems)
    return environments


def _on_disk(environments_dir: Path) -> set[str]:
    """Every environment in the repository (a folder or a settings file), named or not: a pin
    validated alone may require an environment whose files were not named."""
    if not environments_dir.is_dir():
        return set()
    return {
        entry.name if entry.is_dir() else entry.stem
        for entry in environments_dir.iterdir()
        if not entry.name.startswith(".")
        and (entry.is_dir() or (entry.suffix in YAML_SUFFIXES and entry.stem != DEFAULTS_STEM))
    }


def _check_requirements(
    environments: dict[str, Environment], known: set[str], problems: list[Problem]
) -> None:
    for env in environments.values():
        if env.requires is None:
            continue
        file = env.settings_file or f"{ENVIRONMENTS_DIR}/{env.name}.yaml"
        if env.requires == env.name:
            problems.append(Problem(file, None, "requires", "an environment cannot require itself"))
        elif env.requires not in known:
            have = ", ".join(sorted(known))
            problems.append(
                Problem(file, None, "requires", f"no environment {env.requires!r} (have: {have})")
            )


def _load_environment(
    root: Path, env_name: str, file: Path, problems: list[Problem]
) -> Environment | None:
    document = read_document(file, display_path(root, file), root)
    if isinstance(document, Problem):
        problems.append(document)
        return None
    if document.data is None:
        document = Document(document.path, document.display, {}, document.lines)
    # A literal secret is refused in the tool's own words, not the schema pattern's.
    found = _merge(
        document, schema_problems(document, ENVIRONMENT_SCHEMA), registry_problems(document)
    )
    if not found and "serving" in document.data:
        found = endpoint_problems(document, ("serving",))
    if not found:
        found = bound_problems(document)
    if found:
        problems.extend(found)
        return None
    data = document.data
    default = DEFAULT_ENVIRONMENTS.get(env_name)
    stage = data.get("stage", default.stage if default else None)
    alias = data.get("alias")
    requires = data.get("requires")
    gates = Gates.from_data(data.get("gates"))
    if gates is not None and gates.soak and not requires:
        problems.append(
            Problem(
                document.display,
                document.line_of(("gates", "soak")),
                "gates.soak",
                "a soak time is measured in the environment named by `requires`: set it too",
            )
        )
        return None
    if stage is None and alias is None:
        problems.append(
            Problem(
                document.display,
                1,
                None,
                "an environment must set a `stage`, an `alias`, or both",
            )
        )
        return None
    return Environment(
        env_name,
        stage,
        alias,
        requires=requires,
        gates=gates,
        prune=bool(data.get("prune", False)),
        max_retire=int(data.get("max_retire", 3)),
        settings_file=document.display,
        serving=_endpoint(document),
        registry=RegistrySetting.from_document(document),
    )


def _check_environment_conflicts(
    root: Path, environments: dict[str, Environment], files: _Files, problems: list[Problem]
) -> None:
    """Two environments sharing a stage or an alias would fight over it on every apply."""
    for attribute in ("stage", "alias"):
        owners: dict[str, str] = {}
        for env in sorted(environments.values()):
            value = getattr(env, attribute)
            if value is None:
                continue
            if value in owners:
                settings_file = files.settings.get(env.name)
                display = (
                    display_path(root, settings_file)
                    if settings_file
                    else f"{ENVIRONMENTS_DIR}/{env.name}"
                )
                problems.append(
                    Problem(
                        display,
                        None,
                        attribute,
                        f"{value!r} is already used by environment {owners[value]!r}; "
                        "each environment needs its own",
                    )
                )
            else:
                owners[value] = env.name


def _load_pins(root: Path, env_name: str, files: list[Path], problems: list[Problem]) -> list[Pin]:
    pins: list[Pin] = []
    seen: dict[str, str] = {}
    for file in files:
        display = display_path(root, file)
        document = read_document(file, display, root)
        if isinstance(document, Problem):
            problems.append(document)
            continue
        version, version_problems = _version(document)
        found = _merge(document, schema_problems(document, PIN_SCHEMA), version_problems)
        if not found and "serving" in document.data:
            found = endpoint_problems(document, ("serving",))
        if not found:
            found = bound_problems(document)
        model = document.data.get("model") if isinstance(document.data, dict) else None
        if isinstance(model, str):
            found.extend(_model_name_problems(document, model, file.stem))
        if found:
            problems.extend(found)
            continue
        if not isinstance(model, str):
            continue  # unreachable: the schema requires a string; keeps the types honest
        if model in seen:
            problems.append(
                Problem(
                    display,
                    document.line_of(("model",)),
                    "model",
                    f"{model!r} is pinned twice in environment {env_name!r} "
                    f"(also in {seen[model]})",
                )
            )
            continue
        seen[model] = display
        pins.append(_pin(env_name, document, version or ""))
    return pins


def _model_name_problems(document: Document, model: str, stem: str) -> list[Problem]:
    line = document.line_of(("model",))
    problems = []
    # MLflow treats names as paths in places and refuses ones that normalise to something else.
    if model in (".", "..") or model.startswith(".."):
        problems.append(
            Problem(document.display, line, "model", f"{model!r} is not a name MLflow accepts")
        )
    if not filterable_name(model):
        # MLflow accepts such names but its search filter parser cannot name them, so their
        # versions cannot be read (and one such name in a `name IN (...)` list breaks it).
        problems.append(
            Problem(
                document.display,
                line,
                "model",
                f"{model!r} cannot be named in MLflow's search filters (a backslash or a "
                "control character)",
            )
        )
    if model != stem:
        problems.append(
            Problem(
                document.display,
                line,
                "model",
                f"{model!r} must match the file name ({stem!r}): one file per model",
            )
        )
    return problems


def _merge(document: Document, schema: list[Problem], own: Sequence[Problem] = ()) -> list[Problem]:
    """The document's problems: its own checks first; the schema's message about a value already
    reported (a YAML 1.1 spelling, a version) would only repeat it in other words."""
    reported = {p.field for p in own}
    spelling = [p for p in document.duplicates if p.field not in reported]
    reported |= {p.field for p in spelling}
    return [*own, *spelling, *(p for p in schema if p.field not in reported)]


def _version(document: Document) -> tuple[str | None, list[Problem]]:
    """The pinned version, read from its text as written (YAML 1.1 would read `010` as 8), by
    the one rule for versions (versions.parse_version)."""
    written = document.scalars.get(("version",))
    if written is None or not isinstance(document.data, dict):
        return None, []  # missing or not a scalar: the schema says so
    try:
        return parse_version(written.text), []
    except ValueError as error:
        line = document.line_of(("version",))
        return None, [Problem(document.display, line, "version", str(error))]


def _pin(env_name: str, document: Document, version: str) -> Pin:
    data = document.data
    return Pin(
        environment=env_name,
        model=data["model"],
        version=version,
        file=document.display,
        line=document.line_of(("model",)),
        version_line=document.line_of(("version",)),
        run_id=data.get("run_id"),
        run_id_line=document.line_of(("run_id",)),
        note=data.get("note"),
        gates=Gates.from_data(data.get("gates")),
        confidence=data.get("confidence"),
        serving=_endpoint(document),
        source=data.get("from"),
        source_line=document.line_of(("from",)),
    )


def _endpoint(document: Document) -> Endpoint | None:
    serving = document.data.get("serving")
    return Endpoint.from_data(serving, document) if isinstance(serving, dict) else None
