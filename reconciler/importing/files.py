"""`reconciler import`, the writing part: the pins `importing` found become files under
environments/. A pin file that exists is never overwritten unless asked (`--overwrite`); every
file written is validated as `validate` would, and put back as it was if it does not pass."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from reconciler.errors import InvalidInput
from reconciler.importing.from_registry import ImportPin, ImportSkip
from reconciler.pins import pinfile
from reconciler.pins.desired import ENVIRONMENTS_DIR, load_desired_state
from reconciler.pins.values import Pin

Outcome = Literal["written", "unchanged", "differs", "overwritten", "refused"]


@dataclass(frozen=True)
class FileResult:
    """What became of one pin `import` found."""

    pin: ImportPin
    file: str  # relative to the repository root
    outcome: Outcome
    existing_version: str | None = None  # the version the existing pin file names
    reason: str | None = None  # refused: what validation said


@dataclass(frozen=True)
class ImportReport:
    """What `import` found in the registry and did with the files; it never writes the registry."""

    registry: str  # the registry read, without credentials
    files: tuple[FileResult, ...]
    skipped: tuple[ImportSkip, ...]
    workspace: str | None = None  # the registry workspace read, when it has workspaces


def write_pins(
    root: Path,
    pins: Sequence[ImportPin],
    existing: Mapping[tuple[str, str], Pin],
    overwrite: bool,
    comments: Sequence[str],
) -> list[FileResult]:
    schema_comment = (root / pinfile.SCHEMA_PATH).is_file()
    results: list[FileResult] = []
    before: dict[str, bytes | None] = {}  # file → its bytes before we wrote it (None: new)
    for pin in pins:
        current = existing.get((pin.environment, pin.model))
        if current is None:
            relative = f"{ENVIRONMENTS_DIR}/{pin.environment}/{pin.model}.yaml"
            text = pinfile.new_pin(
                pin.model,
                pin.version,
                run_id=pin.run_id,
                comments=comments,
                schema_comment=schema_comment,
            )
            results.append(_write(root, pin, relative, None, text, "written", before))
            continue
        same = current.version == pin.version and current.run_id in (None, pin.run_id)
        if same:
            results.append(FileResult(pin, current.file, "unchanged", current.version))
        elif not overwrite:
            results.append(FileResult(pin, current.file, "differs", current.version))
        else:
            old = (root / current.file).read_text(encoding="utf-8")
            results.append(
                _write(
                    root,
                    pin,
                    current.file,
                    current.version,
                    edited(old, pin),
                    "overwritten",
                    before,
                )
            )
    return _validated(root, results, before)


def _validated(
    root: Path, results: list[FileResult], before: dict[str, bytes | None]
) -> list[FileResult]:
    """Validate the whole repository as `validate` will (settings, `requires`, one pin per model
    and environment): a file we wrote that it refuses is put back as it was and reported."""
    refused: dict[str, str] = {}
    while before:  # nothing written: the repository was validated before import began
        try:
            load_desired_state(root)
            break
        except InvalidInput as error:
            problems = [p for p in error.problems if p.file in before]
            if len(problems) < len(error.problems):
                # Something we did not write is wrong (it was valid before): undo all we wrote.
                for file, text in before.items():
                    _restore(root, file, text)
                raise
            for problem in problems:
                reason = f"{problem.field}: {problem.message}" if problem.field else problem.message
                refused[problem.file] = "; ".join(filter(None, (refused.get(problem.file), reason)))
            for file in {p.file for p in problems}:
                _restore(root, file, before[file])
    return [
        replace(r, outcome="refused", reason=refused[r.file]) if r.file in refused else r
        for r in results
    ]


def _restore(root: Path, file: str, raw: bytes | None) -> None:
    path = root / file
    if raw is not None:
        path.write_bytes(raw)
        return
    path.unlink(missing_ok=True)
    folder = path.parent
    if folder != root / ENVIRONMENTS_DIR and not any(folder.iterdir()):
        folder.rmdir()  # an environment folder we created for this file alone


def edited(before: str, pin: ImportPin) -> str:
    """An existing pin moved to the registry's version, its layout and comments kept; the
    `run_id` follows the version, and `note`/`confidence`, which spoke of the old version, go."""
    text = pinfile.set_key(before, "version", pin.version)
    if pin.run_id is not None and pinfile.has_key(text, "run_id"):
        text = pinfile.set_key(text, "run_id", pinfile.yaml_scalar(pin.run_id))
    elif pin.run_id is None:
        text = pinfile.remove_key(text, "run_id")
    for stale in ("note", "confidence"):
        text = pinfile.remove_key(text, stale)
    return text


def _write(
    root: Path,
    pin: ImportPin,
    relative: str,
    existing_version: str | None,
    text: str,
    outcome: Outcome,
    before: dict[str, bytes | None],
) -> FileResult:
    path = root / relative
    try:
        old = path.read_bytes() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: Ctrl-C mid-import leaves no half-written pin (a rerun goes on).
        partial = path.with_name(f".{path.name}.partial")
        ending = pinfile.line_ending(old) if old is not None else "\n"  # a CRLF pin stays CRLF
        partial.write_text(text, encoding="utf-8", newline=ending)
        os.replace(partial, path)
    except OSError as error:
        return FileResult(pin, relative, "refused", existing_version, error.strerror or str(error))
    before[relative] = old
    return FileResult(pin, relative, outcome, existing_version)
