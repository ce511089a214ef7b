"""`environments/_defaults.yaml`: settings for the whole repository (today its registry
workspace). The leading `_` keeps the name out of the environments' own (they start with a letter
or digit), so no environment can be called `_defaults`."""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import InvalidInput, Problem
from reconciler.pins.documents import Document, read_document
from reconciler.pins.schema_validation import DEFAULTS_SCHEMA, schema_problems
from reconciler.pins.values import WorkspaceSetting

DEFAULTS_STEM = "_defaults"


def is_defaults_file(path: Path) -> bool:
    return path.stem == DEFAULTS_STEM


def load_defaults(
    root: Path, file: Path, display: str, problems: list[Problem]
) -> WorkspaceSetting | None:
    """The workspace the defaults file names (None when it names none); its problems appended."""
    document = read_document(file, display, root)
    if isinstance(document, Problem):
        problems.append(document)
        return None
    if document.data is None:
        return None
    found = schema_problems(document, DEFAULTS_SCHEMA)
    if found:
        problems.extend(found)
        return None
    return _workspace(document)


def read_workspace(root: Path) -> WorkspaceSetting | None:
    """The repository's workspace setting alone, for commands that need no pins (unlock, import
    into an empty repository). A broken defaults file is refused like in validation."""
    environments = root / "environments"
    problems: list[Problem] = []
    found = None
    for suffix in (".yaml", ".yml"):
        file = environments / f"{DEFAULTS_STEM}{suffix}"
        if file.is_file():
            found = load_defaults(root, file, f"environments/{file.name}", problems)
            break
    if problems:
        raise InvalidInput(problems)
    return found


def _workspace(document: Document) -> WorkspaceSetting | None:
    name = document.data.get("workspace") if isinstance(document.data, dict) else None
    if name is None:
        return None
    return WorkspaceSetting(str(name), document.display, document.line_of(("workspace",)) or 1)
