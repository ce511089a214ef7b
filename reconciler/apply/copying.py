"""Make sure the target registry holds a READY, checked copy of one source version (issue 17).

Called under the target model's lease (racing applies make one copy): a copy is found by its
lineage tags, never made twice. What is checked when:
* a new copy: the files downloaded from the source give the content digest; the target downloads
  what it stored back and compares that digest before the version is created (register_copy);
* an existing copy (found by lineage): its status must be READY (PENDING is waited for, bounded;
  FAILED_REGISTRATION is an error), and its listing must hold the bytes its lineage records (a
  missing or truncated file shows without downloading). With `full_check`, its files are
  downloaded and their content digest compared too (a same-size overwrite shows only then).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler.errors import CopyStopped, RegistryError
from reconciler.registry.artifacts import Artifacts, content_digest
from reconciler.registry.base import Registry
from reconciler.registry.lineage import Lineage, find_copy
from reconciler.registry.values import READY, ModelVersion

PENDING = "PENDING_REGISTRATION"
READY_TIMEOUT = 60.0  # seconds a PENDING copy is waited for before it is reported, not served


@dataclass(frozen=True)
class CopyResult:
    version: ModelVersion  # the READY copy in the target
    copied: bool  # False: an existing copy was found (and checked)
    bytes: int  # transferred (0 when nothing was copied)
    seconds: float


def ensure_copy(
    source: Registry,
    target: Registry,
    wanted: Lineage,
    target_versions: Mapping[str, ModelVersion],
    stop: threading.Event | None = None,
    *,
    model: str | None = None,
    full_check: bool = False,
    clock: Callable[[], float] = time.monotonic,
    fetched: Fetched | None = None,
) -> CopyResult:
    """The READY copy of `wanted` (its registry, model and version) in `target`'s `model` (the
    source's model name unless given), making it only when `target_versions` holds none.
    `fetched`: the source's files downloaded already (`fetch`, before the target's lease)."""
    started = clock()
    name = model or wanted.model
    found = find_copy(target_versions, wanted.registry, wanted.model, wanted.version)
    if found is not None:
        ready = _ready(target, found, clock)
        _check_existing(target, ready, full_check)
        return CopyResult(ready, copied=False, bytes=0, seconds=clock() - started)
    with contextlib.ExitStack() as stack:
        if fetched is None:
            fetched = stack.enter_context(fetch(source, wanted, stop))
        lineage = replace(wanted, digest=fetched.digest, size=fetched.listing.total_bytes)
        _check_stop(stop, wanted, "uploading")
        version = target.register_copy(name, fetched.folder, lineage, stop)
    if version.status != READY:  # the port promises READY; a break of that promise is loud
        raise RegistryError(f"{_name(target, version)} is {version.status}, not READY")
    return CopyResult(version, copied=True, bytes=lineage.size, seconds=clock() - started)


@dataclass(frozen=True)
class Fetched:
    """A source version's files in a local folder, listed and digested."""

    folder: Path
    listing: Artifacts
    digest: str


@contextlib.contextmanager
def fetch(
    source: Registry, wanted: Lineage, stop: threading.Event | None = None
) -> Iterator[Fetched]:
    """Download the source version's files into a temporary folder (always removed). Apply does
    this before it leases the target model: a download holds the source registry's side of the
    connection gate, and the target lease's renewals must not wait behind it."""
    _check_stop(stop, wanted, "downloading")
    with tempfile.TemporaryDirectory(prefix="reconciler-copy-") as folder:
        files = Path(folder)
        listing = source.download_version(wanted.model, wanted.version, files)
        if not listing.files:  # nothing a serving job could load: never a copy of nothing
            raise RegistryError(
                f"{wanted.describe()} has no artifact files to copy (its source is empty)"
            )
        yield Fetched(files, listing, content_digest(files))


def _check_stop(stop: threading.Event | None, wanted: Lineage, phase: str) -> None:
    if stop is not None and stop.is_set():
        raise CopyStopped(f"stopped before {phase} the copy of {wanted.describe()}")


def _ready(target: Registry, found: ModelVersion, clock: Callable[[], float]) -> ModelVersion:
    """`found` once READY: a PENDING copy (another apply's, or MLflow still registering) is
    waited for, never served; FAILED_REGISTRATION needs a person."""
    deadline = clock() + READY_TIMEOUT
    current = found
    while current.status == PENDING and clock() < deadline:
        time.sleep(0.5)
        current = target.read_versions(found.model).get(found.version, current)
    if current.status == READY:
        return current
    hint = "delete it to copy again" if current.status != PENDING else "not served"
    raise RegistryError(f"{_name(target, current)} is {current.status} ({hint})")


def check_copy(target: Registry, copy: ModelVersion) -> None:
    """The digest check before a stage or alias moves to a copy made earlier (a rollback, a copy
    another apply made): its files are downloaded and their content digest compared with the one
    its lineage records; a changed file is an error naming the version, and nothing moves."""
    _check_existing(target, copy, full_check=True)


def _check_existing(target: Registry, copy: ModelVersion, full_check: bool) -> None:
    lineage = Lineage.of(copy)
    assert lineage is not None  # found by its lineage
    listing = target.version_artifacts(copy.model, copy.version)
    what = f"{_name(target, copy)}, the copy of {lineage.describe()},"
    if listing.total_bytes != lineage.size:
        raise RegistryError(
            f"{what} holds {listing.total_bytes} bytes where its lineage records {lineage.size} "
            "(a file is missing or was changed): delete that version to copy again"
        )
    if full_check:
        with tempfile.TemporaryDirectory(prefix="reconciler-check-") as folder:
            target.download_version(copy.model, copy.version, Path(folder))
            found = content_digest(Path(folder))
        if found != lineage.digest:
            raise RegistryError(
                f"{what} holds content {found} where its lineage records {lineage.digest} "
                "(a file was changed): delete that version to copy again"
            )


def _name(target: Registry, version: ModelVersion) -> str:
    return f"{version.model} v{version.version} in {target.describe()}"
