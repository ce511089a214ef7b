"""Promotion policy through the CLI: order (requires), metric gates, required tags, soak time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli

PROD_PIN = "environments/production/m.yaml"


def errors(stderr: str) -> list[str]:
    return [line.removeprefix("error: ") for line in stderr.splitlines()][:-1]


@pytest.fixture
def models(fake: FakeRegistry) -> FakeRegistry:
    """m v1..v3 from runs r1..r3 with accuracy 0.81, 0.86, 0.91; v1 serves in Production."""
    for i, accuracy in enumerate((0.81, 0.86, 0.91), start=1):
        fake.create_version("m", run_id=f"r{i}", stage=PRODUCTION if i == 1 else "None")
        fake.metrics[f"r{i}"] = {"accuracy": accuracy, "latency_ms": 40.0 + i * 10}
    return fake


def settings(repo: Repo, text: str) -> None:
    repo.write("environments/production.yaml", text)
    (repo.root / "environments" / "staging").mkdir(parents=True, exist_ok=True)


def test_metric_gates(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    settings(repo, "gates:\n  metrics:\n    accuracy: {min: 0.9}\n    latency_ms: {max: 55}\n")
    repo.pin("production", "m", 2)
    result = run("plan")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"{PROD_PIN}:2: version: policy: accuracy of m v2 is 0.86; gate in environments/production.yaml needs >= 0.9",
        f"{PROD_PIN}:2: version: policy: latency_ms of m v2 is 60; gate in environments/production.yaml needs <= 55",
    ]
    applied = run("apply")
    assert applied.exit_code == 1
    assert [w for w in models.writes if w[0] == "transition"] == []
    repo.pin("production", "m", 3)
    assert run("plan").stderr.count("policy:") == 1  # 0.91 passes accuracy; latency 70 does not


def test_passing_gates_apply(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    settings(repo, "gates:\n  metrics:\n    accuracy: {min: 0.9}\n")
    repo.pin("production", "m", 3)
    assert run("apply").exit_code == 0
    assert models.read(["m"]).models["m"].in_stage(PRODUCTION) == ["3"]


def test_in_sync_pins_are_not_gated(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    settings(repo, "gates:\n  metrics:\n    accuracy: {min: 0.99}\n")
    repo.pin("production", "m", 1)  # already serving: nothing to apply, nothing to gate
    assert run("plan", "--detailed-exitcode").exit_code == 0


def test_required_tags_and_pin_gates(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    settings(repo, "gates:\n  tags: {smoke_test: passed}\n")
    repo.write(PROD_PIN, "model: m\nversion: 2\ngates:\n  metrics:\n    accuracy: {min: 0.95}\n")
    result = run("plan")
    assert errors(result.stderr) == [
        f"{PROD_PIN}:2: version: policy: accuracy of m v2 is 0.86; gate in {PROD_PIN} gates needs >= 0.95",
        f"{PROD_PIN}:2: version: policy: m v2 tag smoke_test is missing; gate in environments/production.yaml needs 'passed'",
    ]
    models.set_version_tag("m", "2", "smoke_test", "failed")
    assert "m v2 tag smoke_test is 'failed'" in run("plan").stderr


def test_missing_metric_and_missing_run(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    settings(repo, "gates:\n  metrics:\n    f1: {min: 0.5}\n")
    repo.pin("production", "m", 2)
    assert errors(run("plan").stderr) == [
        f"{PROD_PIN}:2: version: policy: m v2's run has no metric f1; gate in environments/production.yaml needs >= 0.5"
    ]
    del models.metrics["r2"]
    assert (
        "m v2 has no source run, so metric gate f1 in environments/production.yaml cannot pass"
        in run("plan").stderr
    )


def test_order_requires_staging(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    settings(repo, "requires: staging\n")
    repo.pin("production", "m", 3)
    result = run("plan")
    assert errors(result.stderr) == [
        f"{PROD_PIN}:2: version: policy: m v3 was never applied to staging (no audit record of "
        "an apply there, and staging does not hold it now); promote it through staging first "
        "(requires: staging in environments/production.yaml)"
    ]
    # Through staging first: a change that puts v3 in staging, then production may take it.
    repo.pin("production", "m", 1)
    repo.pin("staging", "m", 3)
    assert run("apply").exit_code == 0
    repo.pin("production", "m", 3)
    result = run("apply")
    assert result.exit_code == 0, result.stderr
    assert models.read(["m"]).models["m"].in_stage(PRODUCTION) == ["3"]


def test_a_version_pinned_in_staging_and_production_at_once_never_counts_as_staged(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    """Staging's pin on a version production also pins only clears Staging (the version's home
    is Production): that is no arrival in staging, so no audit record may say so."""
    settings(repo, "requires: staging\n")
    models.transition_stage("m", "2", STAGING, archive_existing=True)
    repo.pin("staging", "m", 3)
    repo.pin("production", "m", 3)
    assert run("plan").exit_code == 1  # v3 never reached staging
    staged = run("apply", "--env", "staging")  # what reconcile.yml runs first
    assert staged.exit_code == 0, staged.stderr
    tags = models.read(["m"]).models["m"].versions["3"].tags
    assert audit_tag("staging") not in tags
    result = run("plan")
    assert result.exit_code == 1
    assert "m v3 was never applied to staging" in result.stderr


def test_order_rollback_to_a_version_once_applied_to_staging(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    settings(repo, "requires: staging\n")
    repo.pin("staging", "m", 2)
    repo.commit("staging v2")
    assert run("apply", "--env", "staging").exit_code == 0  # the audit record is the evidence
    repo.pin("production", "m", 2)
    repo.commit("production v2")
    assert run("apply", "--env", "production").exit_code == 0
    repo.pin("staging", "m", 3)
    repo.commit("staging v3")
    assert run("apply", "--env", "staging").exit_code == 0
    repo.pin("production", "m", 3)
    repo.commit("production v3")
    assert run("apply").exit_code == 0
    # A rollback to v2, which once passed staging, is allowed...
    repo.pin("production", "m", 2)
    assert run("plan").exit_code == 0
    # ...to v1, which never went through staging, is not.
    repo.pin("production", "m", 1)
    assert "m v1 was never applied to staging" in run("plan").stderr


def test_soak_time(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    settings(repo, "requires: staging\ngates:\n  soak: 24h\n")
    repo.pin("production", "m", 2)
    recently = datetime.now(UTC) - timedelta(hours=3)
    record = audit.AuditRecord("staging", "promote", recently.isoformat(timespec="seconds"))
    models.set_version_tag("m", "2", audit_tag("staging"), audit.append(None, record))
    result = run("plan")
    assert result.exit_code == 1
    message = errors(result.stderr)[0]
    assert message.startswith(
        f"{PROD_PIN}:2: version: policy: m v2 has been in staging for 3h 00m (since "
    )
    assert "soak gate in environments/production.yaml needs 24h: passes from " in message
    long_ago = datetime.now(UTC) - timedelta(days=2)
    record = audit.AuditRecord("staging", "promote", long_ago.isoformat(timespec="seconds"))
    models.set_version_tag("m", "2", audit_tag("staging"), audit.append(None, record))
    assert run("plan").exit_code == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "requires: qa\n",
            "environments/production.yaml: requires: no environment 'qa' (have: production, staging)",
        ),
        (
            "requires: production\n",
            "environments/production.yaml: requires: an environment cannot require itself",
        ),
        (
            "gates:\n  soak: 1h\n",
            "environments/production.yaml:2: gates.soak: a soak time is measured in the environment named by `requires`: set it too",
        ),
        (
            "gates:\n  soak: soon\n",
            "environments/production.yaml:2: gates.soak: 'soon' is not valid",
        ),
        (
            "gates:\n  metrics:\n    accuracy: {minimum: 0.9}\n",
            "environments/production.yaml:3: gates.metrics.accuracy.minimum: unknown key (allowed: dataset, max, min)",
        ),
    ],
)
def test_bad_policy_settings(repo: Repo, run: RunCli, text: str, expected: str) -> None:
    settings(repo, text)
    repo.pin("production", "m", 1)
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr)[0].startswith(expected), result.stderr


def test_a_nan_metric_fails_every_bound(repo: Repo, run: RunCli, models: FakeRegistry) -> None:
    """An exploded training run logs NaN; NaN compares false with everything, so a gate written
    as `value < min` would let it through."""
    settings(repo, "gates:\n  metrics:\n    accuracy: {min: 0.9}\n    latency_ms: {max: 55}\n")
    models.metrics["r3"] = {"accuracy": float("nan"), "latency_ms": float("nan")}
    repo.pin("production", "m", 3)
    result = run("plan")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"{PROD_PIN}:2: version: policy: accuracy of m v3 is nan; gate in environments/production.yaml needs >= 0.9",
        f"{PROD_PIN}:2: version: policy: latency_ms of m v3 is nan; gate in environments/production.yaml needs <= 55",
    ]
    assert run("apply").exit_code == 1
    assert [w for w in models.writes if w[0] == "transition"] == []


@pytest.mark.parametrize("spelling", [".nan", ".inf", "-.inf", ".NaN"])
def test_a_bound_that_is_not_a_finite_number_is_refused(
    repo: Repo, run: RunCli, spelling: str
) -> None:
    settings(repo, f"gates:\n  metrics:\n    accuracy:\n      min: {spelling}\n")
    result = run("validate")
    assert result.exit_code == 1
    assert (
        f"error: environments/production.yaml:4: gates.metrics.accuracy.min: {spelling} is not "
        "a finite number" in result.stderr
    )
