"""What a registry learns about itself (e.g. that it cannot archive atomically) is said once per
apply on stderr, as a note: after a successful apply and after a failed one alike."""

from __future__ import annotations

import json

from reconciler.errors import RegistryError
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, make_runner

NOTICE = "the registry cannot archive and transition in one call (test)"


class TwoStepRegistry(FakeRegistry):
    """Learns on its first archiving transition that it must take two steps, as the MLflow
    adapter does on a psycopg 3 server; optionally fails a later transition."""

    def __init__(self, fail_on: int = 0) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.transitions = 0

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        self.transitions += 1
        if archive_existing and not self.notices:
            self.notices.append(NOTICE)
        if self.transitions == self.fail_on:
            raise RegistryError(f"cannot move {model} v{version} to {stage}: boom")
        super().transition_stage(model, version, stage, archive_existing=archive_existing)


def seeded(registry: FakeRegistry, repo: Repo) -> None:
    for name in ("a", "b"):
        registry.create_version(name, stage="Production")
        registry.create_version(name)
        repo.pin("production", name, 2)
    repo.commit("promote")


def test_notice_said_once_per_apply(repo: Repo) -> None:
    registry = TwoStepRegistry()
    seeded(registry, repo)
    result = make_runner(repo.root, registry)("apply", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert registry.transitions == 2
    assert result.stderr.count(NOTICE) == 1
    assert f"note: {NOTICE}" in result.stderr.splitlines()
    assert len(json.loads(result.stdout)) == 2  # stdout stays one JSON document


def test_notice_said_when_apply_fails_too(repo: Repo) -> None:
    registry = TwoStepRegistry(fail_on=1)
    seeded(registry, repo)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert result.stderr.count(NOTICE) == 1


def test_no_notice_no_note(repo: Repo) -> None:
    registry = FakeRegistry()
    seeded(registry, repo)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 0
    assert "note:" not in result.stderr
