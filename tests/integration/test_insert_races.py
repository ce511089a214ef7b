"""Two writers creating the same tag or alias at once: the database refuses one insert
(DESIGN §6); the adapter retries it once, so neither writer fails."""

from __future__ import annotations

import threading

import pytest

from reconciler.registry.mlflow_registry import MlflowRegistry
from tests.integration.conftest import Seeder

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("what", ["tag", "alias"])
def test_concurrent_first_writes_both_succeed(
    mlflow_server: str, seeder: Seeder, what: str
) -> None:
    errors: list[BaseException] = []
    for trial in range(15):
        name = seeder.name(f"insert-{what}-{trial}")
        seeder.model(name, [0.1, 0.2])
        barrier = threading.Barrier(2)

        def write(version: str, model: str = name, gate: threading.Barrier = barrier) -> None:
            registry = MlflowRegistry(mlflow_server)
            gate.wait()
            try:
                if what == "tag":
                    registry.set_model_tag(model, "reconciler.last_plan", version)
                else:
                    registry.set_alias(model, "champion", version)
            except BaseException as error:  # collected and asserted below
                errors.append(error)

        threads = [threading.Thread(target=write, args=(v,)) for v in ("1", "2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
