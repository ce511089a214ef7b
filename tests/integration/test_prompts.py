"""A pin naming an MLflow prompt, on a real `mlflow server` (issue 15 §9): MLflow's model
searches leave prompts out and its client calls them "not found"; reconciler says what they are
and that it does not manage them, and import reports them as skipped."""

from __future__ import annotations

import pytest

from reconciler.pins.values import PRODUCTION
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder

pytestmark = pytest.mark.integration


def test_a_pin_naming_a_prompt(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    prompt = seeder.name("greeting")
    seeder.prompt(prompt, {"production": "1"})
    model = seeder.name("churn")
    seeder.model(model, [0.9])
    seeder.stage(model, "1", PRODUCTION)
    seeder.client.set_registered_model_alias(model, "production", "1")
    repo.write("environments/production.yaml", "stage: Production\nalias: production\n")
    pin = repo.pin("production", prompt, 1)
    repo.pin("production", model, 1)
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    refusal = (
        f"error: environments/production/{prompt}.yaml:1: model: {prompt!r} is a prompt (MLflow "
        "Prompt Registry), not a registered model: reconciler does not manage prompts or their "
        "aliases; remove this pin"
    )
    for command in (
        ("plan",),
        ("apply",),
        ("status",),
        ("promote", prompt, "--to", "production", "--version", "1"),
    ):
        result = run(*command)
        assert result.exit_code == 1, (command, result.stdout)
        assert result.stderr.splitlines()[0] == refusal, command
    # Nothing was written to the prompt: its alias and stage are as they were.
    assert str(seeder.client.get_prompt_version_by_alias(prompt, "production").version) == "1"
    (found,) = seeder.client.search_registered_models(
        f"name = '{prompt}' AND tags.`mlflow.prompt.is_prompt` = 'true'"
    )
    assert not [key for key in found.tags if key.startswith("reconciler")]

    pin.unlink()
    repo.commit("drop the prompt's pin")
    (repo.root / f"environments/production/{model}.yaml").unlink()
    # The session's server holds other tests' models: import only these two.
    imported = run("import", "--env", "production", "--model", prompt, "--model", model)
    assert imported.exit_code == 0, imported.stderr
    assert (
        f"  - skipped {prompt} in production: a prompt (MLflow Prompt Registry): reconciler "
        "does not manage prompts" in imported.stdout
    )
    assert not pin.exists()
    assert (repo.root / f"environments/production/{model}.yaml").exists()
