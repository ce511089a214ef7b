"""A version's model artifacts as files and sizes, and the digest a copy is checked by (pure).

Two digests, for two costs: `manifest_digest` over paths and sizes comes from a listing (no
download), `content_digest` over paths and contents needs the files on disk. A copy records the
content digest; the cheap check of an existing copy compares its listing with the bytes recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True, order=True)
class ArtifactFile:
    path: str  # relative, `/`-separated, as MLflow lists it under the version's source
    size: int  # bytes


@dataclass(frozen=True)
class Artifacts:
    """The files of one version's model artifacts, sorted by path (folders are not listed)."""

    files: tuple[ArtifactFile, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(sorted(self.files)))

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def manifest_digest(self) -> str:
        """ "sha256:<hex>" over each file's path and size: equal listings, equal digests."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.path}\0{f.size}\n".encode())
        return f"sha256:{digest.hexdigest()}"

    @classmethod
    def of_folder(cls, folder: Path) -> Artifacts:
        """The files under `folder` (a download, or what is about to be uploaded)."""
        return cls(
            tuple(
                ArtifactFile(path.relative_to(folder).as_posix(), path.stat().st_size)
                for path in folder.rglob("*")
                if path.is_file()
            )
        )


def content_digest(folder: Path) -> str:
    """ "sha256:<hex>" over every file under `folder`: its relative path, size and bytes, in path
    order. The size after the path keeps a path and the bytes that follow it unambiguous. Empty
    folders count for nothing (MLflow's artifact stores do not keep them either)."""
    digest = hashlib.sha256()
    for f in Artifacts.of_folder(folder).files:
        digest.update(f"{f.path}\0{f.size}\0".encode())
        with (folder / f.path).open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
