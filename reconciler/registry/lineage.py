"""Lineage tags: a version copied from another registry says where it came from. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.registry.values import ModelVersion

COPY_TAG_PREFIX = "reconciler.copy."
_REGISTRY = COPY_TAG_PREFIX + "source_registry"
_MODEL = COPY_TAG_PREFIX + "source_model"
_VERSION = COPY_TAG_PREFIX + "source_version"
_RUN = COPY_TAG_PREFIX + "source_run"
_DIGEST = COPY_TAG_PREFIX + "digest"
_BYTES = COPY_TAG_PREFIX + "bytes"


@dataclass(frozen=True)
class Lineage:
    registry: str
    model: str
    version: str
    run_id: str | None
    digest: str = ""
    size: int = 0

    def tags(self) -> dict[str, str]:
        tags = {_REGISTRY: self.registry, _MODEL: self.model, _VERSION: self.version}
        if self.run_id:
            tags[_RUN] = self.run_id
        if self.digest:
            tags[_DIGEST] = self.digest
        tags[_BYTES] = str(self.size)
        return tags

    @classmethod
    def of(cls, version: ModelVersion) -> Lineage | None:
        tags = version.tags
        if not all(key in tags for key in (_REGISTRY, _MODEL, _VERSION)):
            return None
        size = tags.get(_BYTES, "0")
        return cls(
            tags[_REGISTRY],
            tags[_MODEL],
            tags[_VERSION],
            tags.get(_RUN),
            tags.get(_DIGEST, ""),
            int(size) if size.isdigit() else 0,
        )


def find_copy(
    versions: Mapping[str, ModelVersion], registry: str, model: str, version: str
) -> ModelVersion | None:
    found = [
        v
        for v in versions.values()
        if (lineage := Lineage.of(v)) is not None
        and (lineage.registry, lineage.model, lineage.version) == (registry, model, version)
    ]
    return min(found, key=lambda v: int(v.version)) if found else None
