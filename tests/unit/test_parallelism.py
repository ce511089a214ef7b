"""`apply --parallelism N`: models written concurrently, each model's steps in order, and the
report, exit code and final registry identical to one by one."""

from __future__ import annotations

import json
import threading
import time

import pytest

from reconciler.errors import RegistryPermissionDenied
from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ModelVersion
from tests.conftest import Repo, make_runner

MODELS = [f"model-{i:02d}" for i in range(16)]


def scenario(repo: Repo, conflicting: str | None = None) -> FakeRegistry:
    """16 models: v1 in Production, v2 in Staging, v3 new; production takes v2 (with @champion),
    staging takes v3. `conflicting` is moved by hand right before our first write to it."""

    class HandEdit(FakeRegistry):
        def read_versions(self, model: str) -> dict[str, ModelVersion]:
            # The re-read just before a stage write.
            if model == conflicting and not getattr(self, "edited", False):
                self.edited = True
                self.force_stage(model, "3", PRODUCTION)
            return super().read_versions(model)

    fake = HandEdit()
    for model in MODELS:
        fake.create_version(model, stage=PRODUCTION)
        fake.create_version(model, stage=STAGING)
        fake.create_version(model)
    return fake


def state(fake: FakeRegistry) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    actual = fake.read(MODELS)
    return {
        name: ({v: mv.stage for v, mv in model.versions.items()}, dict(model.aliases))
        for name, model in actual.models.items()
    }


@pytest.mark.parametrize("conflicting", [None, "model-07"])
def test_parallel_apply_reports_and_ends_like_sequential(
    repo: Repo, conflicting: str | None
) -> None:
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    for model in MODELS:
        repo.pin("production", model, 2)
        repo.pin("staging", model, 3)
    repo.commit("promote everything")
    outcomes = {}
    for n in (1, 8):
        fake = scenario(repo, conflicting)
        result = make_runner(repo.root, fake)("apply", "--format", "json", "--parallelism", str(n))
        outcomes[n] = (result.exit_code, json.loads(result.stdout), state(fake))
        stage_writes = [w for w in fake.writes if w[0] in ("transition", "set_alias")]
        for model in MODELS:
            mine = [w for w in stage_writes if w[1] == model]
            if model != conflicting:  # within a model: Production, its alias, then Staging
                assert [w[0] for w in mine] == ["transition", "set_alias", "transition"]
                assert mine[0][3] == PRODUCTION
                assert mine[2][3] == STAGING
    assert outcomes[1] == outcomes[8]
    assert outcomes[1][0] == (0 if conflicting is None else 1)


class CountsTagWriters(FakeRegistry):
    """Holds every model-tag write open a moment and counts how many were open at once while
    the leases are taken;
    `denied` refuses its tag writes as MLflow answers a user without EDIT on it."""

    def __init__(self, denied: str | None = None) -> None:
        super().__init__()
        self.denied = denied
        self.open = 0
        self.most_open = 0
        self._guard = threading.Lock()

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        if model == self.denied:
            raise RegistryPermissionDenied("PERMISSION_DENIED: Permission denied")
        taking = not any(w[0] == "transition" for w in self.writes)  # the lease, not the records
        with self._guard:
            self.open += 1
            if taking:
                self.most_open = max(self.most_open, self.open)
        time.sleep(0.02)  # a registry across a network: the writes overlap or queue
        try:
            super().set_model_tag(model, key, value, create_model=create_model)
        finally:
            with self._guard:
                self.open -= 1


def one_change_each(repo: Repo, fake: FakeRegistry) -> None:
    for model in MODELS:
        fake.create_version(model, stage=PRODUCTION)
        fake.create_version(model)
        repo.pin("production", model, 2)
    repo.commit("promote everything")


@pytest.mark.parametrize("parallelism", [1, 8])
def test_leases_are_taken_parallelism_at_a_time(repo: Repo, parallelism: int) -> None:
    # One lease write after another made taking 120 leases across a network half of an apply.
    fake = CountsTagWriters()
    one_change_each(repo, fake)
    result = make_runner(repo.root, fake)("apply", "--parallelism", str(parallelism))
    assert result.exit_code == 0, result.output
    if parallelism == 1:
        assert fake.most_open == 1
    else:
        assert 1 < fake.most_open <= parallelism


def test_a_model_refused_among_many_leased_at_once_changes_nothing(repo: Repo) -> None:
    fake = CountsTagWriters(denied="model-09")
    one_change_each(repo, fake)
    result = make_runner(repo.root, fake)("apply", "--parallelism", "8")
    assert result.exit_code == 1
    assert "may not change registered model 'model-09'" in result.output
    assert "nothing was changed" in result.output
    assert not [w for w in fake.writes if w[0] in ("transition", "set_alias")]
    for model in MODELS:  # every lease that was written is given back
        assert '"lease"' not in (fake.get_model_tag(model, "reconciler.state") or "")
