"""`plan` and `apply` through the CLI against the in-memory fake registry."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli


@pytest.fixture
def churn(fake: FakeRegistry) -> FakeRegistry:
    """churn-model v1 in Production, v2 in Staging, v3 new; legacy v1 in Production (no pin)."""
    fake.create_version("churn-model", stage=PRODUCTION, run_id="run-a")
    fake.create_version("churn-model", stage=STAGING, run_id="run-b")
    fake.create_version("churn-model", run_id="run-c")
    fake.create_version("legacy", stage=PRODUCTION)
    return fake


def stages(fake: FakeRegistry, model: str = "churn-model") -> dict[str, str]:
    return {v: mv.stage for v, mv in fake.read([model]).models[model].versions.items()}


def test_plan_in_sync(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 1)
    repo.pin("staging", "churn-model", 2)
    result = run("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:4] == [
        "production (Production)",
        "  = churn-model: v1 (in sync)",
        "staging (Staging)",
        "  = churn-model: v2 (in sync)",
    ]
    assert "Plan: 0 to change, 2 in sync" in result.stdout
    assert churn.writes == []


def test_plan_promotion_text(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 2, note="recall +4%")
    repo.pin("staging", "churn-model", 3)
    result = run("plan", "--detailed-exitcode")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "production (Production)",
        "  ~ churn-model: v1 → v2 (v2 → Production, archives v1)",
        "      note: recall +4%",
        "staging (Staging)",
        "  ~ churn-model: v2 → v3 (v3 → Staging)",
        "unmanaged (holds a managed stage or alias without a pin; never touched)",
    ]
    assert lines[6] == "  ? production: legacy Production v1"
    assert lines[7] == "Plan: 2 to change, 0 in sync (2 transitions, 0 archives, 0 alias moves)."
    assert lines[8].startswith("Checksum: ")
    assert len(lines[8]) == len("Checksum: ") + 64
    assert churn.writes == []  # plan never writes


def test_plan_without_detailed_exitcode_is_zero_with_changes(
    repo: Repo, run: RunCli, churn: FakeRegistry
) -> None:
    repo.pin("production", "churn-model", 3)
    assert run("plan").exit_code == 0


def test_plan_markdown(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 2, note="a | b")
    repo.pin("staging", "churn-model", 2)
    result = run("plan", "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:6] == [
        "### Registry plan: changes pending",
        "",
        "| Environment | Model | Registry now | Pinned | Action |",
        "|---|---|---|---|---|",
        "| production | `churn-model` | v1 | v2 | **v2 → Production, archives v1**<br>_a \\\\| b_ |",
        "| staging | `churn-model` | v2 | v2 | moves on to production with production's change: "
        "not there yet |",
    ]
    assert "<details><summary>Unmanaged: 1 (never touched)</summary>" in result.stdout


def test_plan_marks_rollback(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    churn.transition_stage("churn-model", "3", PRODUCTION, archive_existing=True)
    repo.pin("production", "churn-model", 1)
    text = run("plan").stdout
    assert "  ~ churn-model: v3 → v1 ROLLBACK (v1 → Production, archives v3)" in text
    markdown = run("plan", "--format", "markdown").stdout
    assert "⏪ **ROLLBACK**" in markdown


def test_plan_json(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 2)
    document = json.loads(run("plan", "--format", "json").stdout)
    assert document["has_changes"] is True
    assert document["counts"] == {
        "transition": 1,
        "archive": 0,
        "set_alias": 0,
        "retire": 0,
        "remove_alias": 0,
        "disown": 0,
    }
    assert document["changes"] == [
        {
            "kind": "transition",
            "environment": "production",
            "model": "churn-model",
            "version": "2",
            "stage": PRODUCTION,
            "alias": None,
            "archives": ["1"],
            "previous": None,
            "expect": {"2": STAGING, "1": PRODUCTION},
            "source": None,  # a version copied from another registry: where from
        }
    ]
    assert document["pins"][0]["current_versions"] == ["1"]
    assert document["unmanaged"] == [
        {"environment": "production", "model": "legacy", "target": PRODUCTION, "versions": ["1"]}
    ]


def test_plan_filters(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 2)
    repo.pin("staging", "churn-model", 3)
    document = json.loads(run("plan", "--format", "json", "--env", "staging").stdout)
    assert [c["environment"] for c in document["changes"]] == ["staging"]
    by_model = json.loads(run("plan", "--format", "json", "--model", "churn-model").stdout)
    assert by_model["unmanaged"] == []
    bad_env = run("plan", "--env", "qa")
    assert bad_env.exit_code == 1
    assert bad_env.stderr == "error: --env 'qa': no such environment (have: production, staging)\n"
    bad_model = run("plan", "--model", "nope")
    assert bad_model.exit_code == 1
    assert bad_model.stderr == (
        "error: --model 'nope': no pin names this model, and this repository manages it nowhere "
        "in scope (nothing to retire)\n"
    )


@pytest.mark.parametrize(
    ("pin", "expected"),
    [
        (
            {"model": "ghost", "version": 1},
            "environments/production/ghost.yaml:1: model: registered model 'ghost' not found",
        ),
        (
            {"model": "churn-model", "version": 9},
            "environments/production/churn-model.yaml:2: version: churn-model v9 not found in the registry (latest is v3)",
        ),
        (
            {"model": "churn-model", "version": 2, "run_id": "run-x"},
            "environments/production/churn-model.yaml:3: run_id: churn-model v2 comes from run run-b, not run-x",
        ),
    ],
)
def test_plan_errors_name_the_file(
    repo: Repo, run: RunCli, churn: FakeRegistry, pin: dict[str, object], expected: str
) -> None:
    repo.write(
        f"environments/production/{pin['model']}.yaml",
        "".join(f"{k}: {v}\n" for k, v in pin.items()),
    )
    for command in ("plan", "apply"):
        result = run(command, "--detailed-exitcode") if command == "plan" else run(command)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"error: {expected}",
            "error: 1 problem(s) found; nothing was changed in the registry.",
        ]
    assert churn.writes == []


def test_version_not_ready(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m", status="FAILED_REGISTRATION")
    repo.pin("production", "m", 1)
    result = run("plan")
    assert (
        "environments/production/m.yaml:2: version: m v1 is FAILED_REGISTRATION, not READY"
        in result.stderr
    )


def test_apply_promotes_and_is_idempotent(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 2)
    repo.pin("staging", "churn-model", 3)
    result = run("apply")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "✓ production: churn-model v2 → Production, archives v1",
        "✓ staging: churn-model v3 → Staging",
        "Apply: 2 applied, 0 failed, 0 not attempted; 0 already in sync.",
    ]
    assert stages(churn) == {"1": "Archived", "2": PRODUCTION, "3": STAGING}
    assert stages(churn, "legacy") == {"1": PRODUCTION}  # unmanaged: untouched
    writes = len(churn.writes)
    again = run("apply")
    assert again.exit_code == 0
    assert again.stdout.splitlines() == [
        "Nothing to do: the registry matches the pins.",
        "Apply: 0 applied, 0 failed, 0 not attempted; 2 already in sync.",
    ]
    assert len(churn.writes) == writes


def test_apply_json_records(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 2)
    repo.pin("staging", "churn-model", 2)
    records = json.loads(run("apply", "--format", "json").stdout)
    assert records == [
        {
            "model_name": "churn-model",
            "environment": "production",
            "new_version": "2",
            "new_stage": PRODUCTION,
            "archived_version": "1",
            "archived_versions": ["1"],
            "promoted": True,
            "already_promoted": False,
            "promoted_onward_to": None,
            "outcome": "applied",
            "repairs": [],
            "retired": False,
            "adopted": False,
        },
        {
            "model_name": "churn-model",
            "environment": "staging",
            "new_version": "2",
            "new_stage": STAGING,
            "archived_version": None,
            "archived_versions": [],
            "promoted": False,
            "already_promoted": True,
            "promoted_onward_to": "production",
            "outcome": "in_sync",
            "repairs": [],
            "retired": False,
            "adopted": False,
        },
    ]
    assert stages(churn) == {"1": "Archived", "2": PRODUCTION, "3": "None"}
    again = json.loads(run("apply", "--format", "json").stdout)
    assert [r["already_promoted"] for r in again] == [True, True]


def test_apply_aliases(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    repo.write("environments/shadow.yaml", "stage: null\nalias: shadow\n")
    repo.pin("production", "churn-model", 1)
    repo.pin("shadow", "churn-model", 3)
    result = run("apply", "--format", "json")
    records = json.loads(result.stdout)
    assert [(r["environment"], r["new_stage"], r["promoted"]) for r in records] == [
        ("production", PRODUCTION, True),
        ("shadow", "@shadow", True),
    ]
    assert churn.read(["churn-model"]).models["churn-model"].aliases == {
        "champion": "1",
        "shadow": "3",
    }


def test_apply_corrects_drift(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 1)
    churn.force_stage("churn-model", "3", PRODUCTION)  # a second version slipped into Production
    plan = run("plan")
    assert "  ~ churn-model: v1, v3 → v1 (archive v3 (extra in Production))" in plan.stdout
    assert run("apply").exit_code == 0
    assert stages(churn)["3"] == "Archived"
    transitions = [w for w in churn.writes if w[0] == "transition"]
    assert transitions == [("transition", "churn-model", "3", "Archived", "False")]


def test_bad_pin_anywhere_writes_nothing(repo: Repo, run: RunCli, churn: FakeRegistry) -> None:
    repo.pin("production", "churn-model", 2)
    repo.write("environments/staging/other.yaml", "model: other\nversion: zero\n")
    result = run("apply", "--env", "production")
    assert result.exit_code == 1
    assert "environments/staging/other.yaml:2: version:" in result.stderr
    assert churn.writes == []


class FailingRegistry(FakeRegistry):
    """Fails the n-th write the way a registry error surfaces: a RegistryError."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.transitions = 0

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        self.transitions += 1
        if self.transitions == self.fail_on:
            from reconciler.errors import RegistryError

            raise RegistryError(
                f"cannot move {model} v{version} to {stage} at http://***@host: boom"
            )
        super().transition_stage(model, version, stage, archive_existing=archive_existing)


def test_apply_reports_partial_failure(repo: Repo) -> None:
    from tests.conftest import make_runner

    registry = FailingRegistry(fail_on=1)
    for _ in range(2):
        registry.create_version("a")
        registry.create_version("b")
    repo.pin("production", "a", 1)
    repo.pin("production", "b", 1)
    repo.pin("staging", "b", 2)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "✗ production: a v1 → Production: FAILED: cannot move a v1 to Production at http://***@host: boom",
        "- production: b v1 → Production: not attempted",
        "- staging: b v2 → Staging: not attempted",
        "Apply: 0 applied, 1 failed, 2 not attempted; 0 already in sync.",
    ]
    assert result.stderr == (
        "error: apply stopped at a failed change; run `reconciler plan` to see what remains\n"
    )


def test_plan_text_shows_the_comparison_confidence(
    repo: Repo, run: RunCli, churn: FakeRegistry
) -> None:
    repo.write(
        "environments/production/churn-model.yaml",
        "model: churn-model\nversion: 2\nconfidence: 0.87\n",
    )
    lines = run("plan").stdout.splitlines()
    assert lines[1:3] == [
        "  ~ churn-model: v1 → v2 (v2 → Production, archives v1)",
        "      comparison confidence: 0.87",
    ]
