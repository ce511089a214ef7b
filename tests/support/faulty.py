"""Fake registries that fail one way on purpose (subclasses of the fake, never mocks)."""

from __future__ import annotations

from reconciler.errors import RegistryError
from reconciler.registry.fake import FakeRegistry


class FailsTransition(FakeRegistry):
    """Every stage change of the model `failing` fails as a server error would."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        if model == self.failing:
            raise RegistryError(f"move {model} v{version} to {stage}: INTERNAL_ERROR: boom")
        super().transition_stage(model, version, stage, archive_existing=archive_existing)
