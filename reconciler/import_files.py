"""`reconciler import`, the writing part: the pins `importing` found become files under
environments/. A pin file that exists is never overwritten unless asked (`--overwrite`); every
file written is validated as `validate` would, and put back as it was if it does not pass."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler import pinfile
from reconciler.desired import ENVIRONMENTS_DIR, load_desired_state
from reconciler.errors import InvalidInput
from reconciler.importing import ImportPin, ImportSkip
from reconciler.state import Pin

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


def write_pins(
    root: Path,
    pins: Sequence[ImportPin],
    existing: Mapping[tuple[str, str], Pin],
    overwrite: bool,
    comments: Sequence[str],
) -> list[FileResult]:
    schema_comment = (root / pinfile.SCHEMA_PATH).is_file()
    results = []
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
            results.append(_write(root, pin, relative, None, None, text, "written"))
            continue
        same = current.version == pin.version and current.run_id in (None, pin.run_id)
        if same:
            results.append(FileResult(pin, current.file, "unchanged", current.version))
        elif not overwrite:
            results.append(FileResult(pin, current.file, "differs", current.version))
        else:
            before = (root / current.file).read_text(encoding="utf-8")
            text = edited(before, pin)
            results.append(
                _write(root, pin, current.file, before, current.version, text, "overwritten")
            )
    return results


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
    before: str | None,
    existing_version: str | None,
    text: str,
    outcome: Outcome,
) -> FileResult:
    path = root / relative
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: Ctrl-C mid-import leaves no half-written pin (a rerun goes on).
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        return FileResult(pin, relative, "refused", existing_version, error.strerror or str(error))
    try:
        load_desired_state(root, [path])
    except InvalidInput as error:
        # Never leave a pin `validate` refuses: put the file back as it was.
        if before is None:
            path.unlink()
        else:
            path.write_text(before, encoding="utf-8")
        reason = "; ".join(
            f"{p.field}: {p.message}" if p.field else p.message for p in error.problems
        )
        return FileResult(pin, relative, "refused", existing_version, reason)
    return FileResult(pin, relative, outcome, existing_version)
