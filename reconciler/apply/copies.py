"""What an apply reports of the copies it made (or found made) before moving them."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.planning.sourcing import Copy


@dataclass(frozen=True)
class CopyDone:
    """`copy` is in its registry as `version`: copied now (`copied`, with the bytes moved and
    the time it took) or found there by its lineage."""

    copy: Copy
    version: str
    copied: bool
    bytes: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        label = self.copy.source.label()
        if not self.copied:
            where = f"{self.copy.environment}'s registry"
            return f"{self.copy.model}: {label} is in {where} already as v{self.version}"
        megabytes = self.bytes / 1_000_000
        return (
            f"{self.copy.model}: copied {label} into {self.copy.environment}'s registry as "
            f"v{self.version} ({megabytes:.1f} MB in {self.seconds:.1f} s)"
        )
