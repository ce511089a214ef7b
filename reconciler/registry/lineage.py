"""Where a copied version came from, as the tags it carries in the target registry (pure).

A copy is found by these tags, never by its number: the target numbers its versions itself, so
`prod` v1 may be the copy of `staging` v7. The tags are written in the same request that creates
the version (create_model_version with tags), so a version is a copy with its lineage or no copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.registry.values import ModelVersion

COPY_TAG_PREFIX = "reconciler.copy."
SOURCE_REGISTRY = f"{COPY_TAG_PREFIX}source_registry"
SOURCE_MODEL = f"{COPY_TAG_PREFIX}source_model"
SOURCE_VERSION = f"{COPY_TAG_PREFIX}source_version"
SOURCE_RUN = f"{COPY_TAG_PREFIX}source_run"
DIGEST = f"{COPY_TAG_PREFIX}digest"
BYTES = f"{COPY_TAG_PREFIX}bytes"


@dataclass(frozen=True)
class Lineage:
    registry: str  # the source registry's identity: describe() (+ " workspace:<ws>")
    model: str
    version: str  # the source's version number
    run_id: str | None
    digest: str = ""  # "sha256:<hex>" of the artifacts' content; "" before the copy
    size: int = 0  # bytes

    def tags(self) -> dict[str, str]:
        tags = {
            SOURCE_REGISTRY: self.registry,
            SOURCE_MODEL: self.model,
            SOURCE_VERSION: self.version,
            DIGEST: self.digest,
            BYTES: str(self.size),
        }
        if self.run_id:
            tags[SOURCE_RUN] = self.run_id
        return tags

    def names(self, registry: str, model: str, version: str) -> bool:
        """True when this is the lineage of (registry, model, version)."""
        return (self.registry, self.model, self.version) == (registry, model, version)

    def describe(self) -> str:
        """`churn v7 of http://dev:5000`, for messages."""
        return f"{self.model} v{self.version} of {self.registry}"

    @classmethod
    def of(cls, version: ModelVersion) -> Lineage | None:
        """The lineage a version's tags record; None when it is not a copy (or its tags were
        edited out of shape: a copy must name its source fully to be reused)."""
        tags = version.tags
        try:
            registry, model, number = (
                tags[SOURCE_REGISTRY],
                tags[SOURCE_MODEL],
                tags[SOURCE_VERSION],
            )
        except KeyError:
            return None
        size = tags.get(BYTES, "")
        return cls(
            registry,
            model,
            number,
            tags.get(SOURCE_RUN) or None,
            tags.get(DIGEST, ""),
            int(size) if size.isdigit() else -1,
        )


def find_copy(
    versions: Mapping[str, ModelVersion], registry: str, model: str, version: str
) -> ModelVersion | None:
    """The copy of (registry, model, version) among a target model's versions: the lowest
    number when there are several (a copy made by hand, or before this tool found the first)."""
    found = [
        mv
        for mv in versions.values()
        if (lineage := Lineage.of(mv)) is not None and lineage.names(registry, model, version)
    ]
    return min(found, key=lambda mv: int(mv.version)) if found else None


# The run a copy is uploaded in (experiment COPY_EXPERIMENT of the target) carries the lineage
# and this status: "uploading" until the files the target holds were downloaded back and matched
# the digest, then "checked". Only a checked run is ever registered.
COPY_EXPERIMENT = "reconciler-copies"
RUN_STATUS = f"{COPY_TAG_PREFIX}status"
TARGET_MODEL = f"{COPY_TAG_PREFIX}target_model"  # on the run: the model it is a copy for
UPLOADING = "uploading"
CHECKED = "checked"


@dataclass(frozen=True)
class CopyRun:
    """A run of COPY_EXPERIMENT as the target lists it."""

    run_id: str
    tags: Mapping[str, str]
    finished: bool  # the run's status is FINISHED (set only after the check)


def run_tags(lineage: Lineage, model: str) -> dict[str, str]:
    """The tags a copy run starts with: the lineage, the target model, "uploading"."""
    return {**lineage.tags(), TARGET_MODEL: model, RUN_STATUS: UPLOADING}


def sort_runs(
    runs: list[CopyRun], lineage: Lineage, model: str
) -> tuple[CopyRun | None, list[CopyRun]]:
    """What to do with the runs left by earlier copies of `lineage` into `model` (the target
    model's lease covers them; a copy of the same version into another model is not ours to
    touch). A SIGKILL may stop a copy
    anywhere): the first finished, checked run of the same digest is registered without
    uploading again; every other run of that lineage (unfinished, unchecked, or of another
    digest: the source changed) is discarded and never registered. Runs of other lineages are
    not ours to touch."""
    mine = [
        run
        for run in runs
        if run.tags.get(SOURCE_REGISTRY) == lineage.registry
        and run.tags.get(SOURCE_MODEL) == lineage.model
        and run.tags.get(SOURCE_VERSION) == lineage.version
        and run.tags.get(TARGET_MODEL) == model
    ]
    reusable = [
        run
        for run in mine
        if run.finished
        and run.tags.get(RUN_STATUS) == CHECKED
        and run.tags.get(DIGEST) == lineage.digest
        and lineage.digest
    ]
    keep = reusable[0] if reusable else None
    return keep, [run for run in mine if run is not keep]
