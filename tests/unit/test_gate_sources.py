"""Metric gates on MLflow 3 through the CLI with the fake registry: a version registered from a
LoggedModel is judged by that model's metrics (latest value per dataset), never by its run's last
value; a gate may name the dataset; a version without a LoggedModel reads its run as before."""

from __future__ import annotations

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli
from tests.unit.test_policy import PROD_PIN, errors, settings

SETTINGS = "environments/production.yaml"


@pytest.fixture
def models(fake: FakeRegistry) -> FakeRegistry:
    """m v1 from run r1 (MLflow 2 style, accuracy 0.85) serves in Production. m v2 is registered
    from LoggedModel m2 whose run r2 also logged it: accuracy 0.80 on eval, then 0.99 on train
    (logged last, so the run's own accuracy reads 0.99)."""
    fake.create_version("m", run_id="r1", stage=PRODUCTION)
    fake.metrics["r1"] = {"accuracy": 0.85}
    m2 = fake.create_logged_model()
    fake.log_model_metric(m2, "accuracy", 0.80, dataset="eval")
    fake.log_model_metric(m2, "accuracy", 0.99, dataset="train")
    fake.metrics["r2"] = {"accuracy": 0.99}
    fake.create_version("m", run_id="r2", model_id=m2)
    return fake


def gate(repo: Repo, bound: str) -> None:
    settings(repo, f"gates:\n  metrics:\n    accuracy: {bound}\n")
    repo.pin("production", "m", 2)


def test_a_metric_on_several_datasets_needs_the_gate_to_name_one(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    gate(repo, "{min: 0.9}")
    result = run("plan")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"{PROD_PIN}:2: version: policy: accuracy of m v2 was logged on several datasets "
        f"(eval 0.8, train 0.99); gate in {SETTINGS} names none: add `dataset: <name>` to it"
    ]
    applied = run("apply")
    assert applied.exit_code == 1
    assert [w for w in models.writes if w[0] == "transition"] == []


def test_a_gate_naming_a_dataset_reads_that_dataset(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    gate(repo, "{min: 0.9, dataset: eval}")
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: accuracy of m v2 is 0.8 on dataset eval (its logged "
        f"model); gate in {SETTINGS} needs >= 0.9"
    ]
    gate(repo, "{min: 0.9, dataset: train}")
    applied = run("apply")
    assert applied.exit_code == 0, applied.stderr
    assert models.read(["m"]).models["m"].in_stage(PRODUCTION) == ["2"]


def test_a_dataset_the_model_never_logged_on(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    gate(repo, "{min: 0.9, dataset: holdout}")
    m2 = models.read(["m"]).models["m"].versions["2"].model_id
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: m v2's logged model {m2} has no metric accuracy on "
        f"dataset holdout (logged on: eval 0.8, train 0.99); gate in {SETTINGS} needs >= 0.9"
    ]


def test_the_latest_value_per_dataset_wins(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    """Highest step first, then the later timestamp; the order of logging alone decides nothing."""
    fake.create_version("m", stage=PRODUCTION)
    model = fake.create_logged_model()
    fake.log_model_metric(model, "accuracy", 0.5, dataset="eval", step=0)
    fake.log_model_metric(model, "accuracy", 0.95, dataset="eval", step=2)
    fake.log_model_metric(model, "accuracy", 0.6, dataset="eval", step=1)  # logged last
    fake.create_version("m", model_id=model)
    gate(repo, "{min: 0.9}")
    assert run("plan").exit_code == 0
    fake.log_model_metric(model, "accuracy", 0.7, dataset="eval", step=2)  # same step, later
    result = run("plan")
    assert "accuracy of m v2 is 0.7 on dataset eval (its logged model)" in result.stderr


def test_a_logged_model_without_a_run_can_pass(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    """`initialize_logged_model` outside a run, then registered: the version has no run."""
    fake.create_version("m", stage=PRODUCTION)
    model = fake.create_logged_model()
    fake.log_model_metric(model, "accuracy", 0.93)
    assert fake.create_version("m", model_id=model) == "2"
    gate(repo, "{min: 0.95}")
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: accuracy of m v2 is 0.93 (its logged model); gate in "
        f"{SETTINGS} needs >= 0.95"
    ]
    gate(repo, "{min: 0.9}")
    applied = run("apply")
    assert applied.exit_code == 0, applied.stderr
    assert fake.read(["m"]).models["m"].in_stage(PRODUCTION) == ["2"]


def test_a_version_from_a_logged_model_never_reads_its_run(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """A run may hold several models, and its metrics are the last value of any of them."""
    fake.create_version("m", stage=PRODUCTION)
    model = fake.create_logged_model()
    fake.log_model_metric(model, "loss", 0.1)
    fake.metrics["r"] = {"accuracy": 0.99, "loss": 0.1}
    fake.create_version("m", run_id="r", model_id=model)
    gate(repo, "{min: 0.9}")
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: m v2's logged model {model} has no metric accuracy (a "
        "version from a logged model is judged by the model's metrics, not its run's: log it "
        f"with model_id); gate in {SETTINGS} needs >= 0.9"
    ]
    del fake.logged_models[model]  # deleted since it was registered
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: m v2 was registered from logged model {model}, which "
        f"no longer exists, so metric gate accuracy in {SETTINGS} cannot pass"
    ]


def test_mlflow_2_versions_read_their_run_as_before(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m", run_id="r1", stage=PRODUCTION)
    fake.create_version("m", run_id="r2")
    fake.metrics["r2"] = {"accuracy": 0.86}
    gate(repo, "{min: 0.9}")
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: accuracy of m v2 is 0.86; gate in {SETTINGS} needs >= 0.9"
    ]
    gate(repo, "{min: 0.8, dataset: eval}")  # a run's metrics name no dataset
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: m v2 has no logged model, so metric gate accuracy "
        f"(eval) in {SETTINGS} cannot pass: its run's metrics name no dataset (drop `dataset:` "
        "to read the run)"
    ]
    gate(repo, "{min: 0.8}")
    assert run("apply").exit_code == 0


def test_pin_gates_name_datasets_too(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    repo.write(
        PROD_PIN,
        "model: m\nversion: 2\ngates:\n  metrics:\n    accuracy: {min: 0.85, dataset: eval}\n",
    )
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: accuracy of m v2 is 0.8 on dataset eval (its logged "
        f"model); gate in {PROD_PIN} gates needs >= 0.85"
    ]


@pytest.mark.parametrize(
    ("file", "text", "line"),
    [
        (SETTINGS, "gates:\n  metrics:\n    accuracy: {dataset: eval}\n", 3),
        (PROD_PIN, "model: m\nversion: 2\ngates:\n  metrics:\n    accuracy: {dataset: eval}\n", 5),
    ],
    ids=["settings", "pin"],
)
def test_a_bound_naming_only_a_dataset_is_refused(
    repo: Repo, run: RunCli, models: FakeRegistry, file: str, text: str, line: int
) -> None:
    repo.pin("production", "m", 2)
    repo.write(file, text)
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"{file}:{line}: gates.metrics.accuracy: needs min, max or both (dataset only says "
        "which logged value to read)"
    ]
    repo.write(file, text.replace("{dataset: eval}", "{dataset: ''}"))
    assert "gates.metrics.accuracy.dataset" in run("validate").stderr


def test_the_review_says_where_each_figure_came_from(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    gate(repo, "{min: 0.9, dataset: train}")
    result = run("plan", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| accuracy")]
    assert table == [
        "| accuracy (train) | 0.85 | 0.99 | +0.14 | v1 run · v2 model, train |",
        "| accuracy (eval) | n/a | 0.8 | n/a | model, eval |",
    ]
    assert "Policy passed: accuracy (train) &gt;= 0.9" in result.stdout  # escaped: renders >=


def test_a_hostile_dataset_name_stays_inside_its_cell(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """Anyone who may log a metric names its dataset: the From column is markdown text too
    (hostile review: a dataset named with `<details>` opened a block in the PR comment)."""
    from tests.support.markdown import render

    fake.create_version("m", run_id="r1", stage=PRODUCTION)
    fake.metrics["r1"] = {"accuracy": 0.85}
    model = fake.create_logged_model()
    fake.log_model_metric(model, "accuracy", 0.5, dataset="a|b\n## h <details>`x`\u202e")
    fake.log_model_metric(model, "accuracy", 0.95, dataset="eval")
    fake.create_version("m", run_id="r2", model_id=model)
    gate(repo, "{min: 0.9, dataset: eval}")
    result = run("plan", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    shown = render(result.stdout)
    assert "details" not in shown.tags
    assert [tag for tag, _text in shown.headings] == ["h3", "h4"]  # the plan's, the review's
    assert "\u202e" not in result.stdout
    assert all(len(set(row)) == 1 for row in shown.tables), shown.tables
