"""Issue 4's pieces against a real `mlflow server`: the review plan with real run metrics and UI
links, the workflow scripts fed by real CLI output, promote's registry fallback, status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.scripts import load_script
from tests.support.workflow import Runner, install_ci_scripts

pytestmark = pytest.mark.integration


def test_review_plan_comment_and_apply_outputs(
    repo: Repo, seeder: Seeder, mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = seeder.name("reviewed")
    seeder.model(model, [0.84, 0.93])
    seeder.stage(model, "1", PRODUCTION)
    repo.write("environments/production.yaml", "gates:\n  metrics:\n    accuracy: {min: 0.9}\n")
    repo.pin("production", model, 2, confidence="0.9")
    run = make_runner(repo.root, tracking_uri=mlflow_server)

    plan = run("plan", "--model", model, "--format", "markdown")
    assert plan.exit_code == 0, plan.stderr
    assert f"#### production: `{model}` v1 → v2" in plan.stdout
    assert "| accuracy | 0.84 | 0.93 | +0.09 | run |" in plan.stdout
    assert f"[v2]({mlflow_server}/#/models/{model}/versions/2)" in plan.stdout
    assert "comparison confidence 0.9" in plan.stdout
    assert "Policy passed: accuracy &gt;= 0.9" in plan.stdout  # renders as >=
    comment = load_script("sticky_comment").render(plan.stdout)
    assert comment.startswith("<!-- reconciler-plan -->\n### Registry plan: changes pending")

    applied = run("apply", "--model", model, "--format", "json")
    assert applied.exit_code == 0, applied.stderr
    records = tmp_path / "apply.json"
    records.write_text(applied.stdout)
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert load_script("apply_outputs").main([str(records)]) == 0
    assert out.read_text() == f'changed_models=["{model}"]\nchanged=true\n'

    status = json.loads(run("status", "--model", model, "--format", "json").stdout)
    assert [(r["environment"], r["registry_versions"], r["in_sync"]) for r in status] == [
        ("production", ["2"], True)
    ]


def test_promote_falls_back_to_the_registry(repo: Repo, seeder: Seeder, mlflow_server: str) -> None:
    model = seeder.name("fallback")
    seeder.model(model, [0.5, 0.6, 0.7])
    seeder.stage(model, "2", STAGING)
    seeder.stage(model, "3", STAGING)
    repo.pin("production", model, 1)
    run = make_runner(repo.root, tracking_uri=mlflow_server)
    record = json.loads(run("promote", model, "--to", "production", "--format", "json").stdout)
    assert (record["new_version"], record["archived_version"], record["version_from"]) == (
        "3",
        "1",
        "latest Staging version in the registry",
    )
    assert "version: 3" in (repo.root / f"environments/production/{model}.yaml").read_text()


# -- the workflows' own steps, run here with the real CLI (tests/support/workflow.py) --


@pytest.fixture
def gh(tmp_path: Path) -> tuple[Path, Path]:
    """A recording `gh` on PATH: one JSON line of arguments per call; no comments, no issues."""
    folder = tmp_path / "gh-bin"
    folder.mkdir()
    log = tmp_path / "gh.log"
    script = folder / "gh"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "sys.stdout.write('[]' if sys.argv[1] == 'issue' else '')\n"
    )
    script.chmod(0o755)
    return folder, log


def gh_calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


PR_ENV = {
    "PR_NUMBER": "7",
    "REPOSITORY": "org/pins",
    "RUN_URL": "https://ci/run/1",
    "GH_TOKEN": "not-a-token",
}


def test_pr_workflow_comments_the_plan_or_why_it_failed(
    repo: Repo, seeder: Seeder, mlflow_server: str, gh: tuple[Path, Path]
) -> None:
    model = seeder.name("pr")
    seeder.model(model, [0.5, 0.6])
    seeder.stage(model, "1", PRODUCTION)
    install_ci_scripts(repo.root)
    repo.write("environments/production.yaml", "requires: staging\n")
    repo.pin("staging", model, 1)
    repo.pin("production", model, 2)  # v2 never reached staging: the policy refuses it
    repo.commit("promote without staging")
    runner = Runner(repo.root, {"MLFLOW_TRACKING_URI": mlflow_server}, extra_path=gh[0])

    planned = runner.run("pr.yml", "plan", "plan")
    assert planned.returncode == 0, planned.stderr
    assert runner.outputs()["code"] == "1"
    plan_md = (repo.root / "plan.md").read_text()
    assert "::error" not in plan_md  # annotations never share stdout with the plan file
    assert f"::error file=environments/production/{model}.yaml" in planned.stderr
    posted = runner.run(
        "pr.yml", "plan", "Post the plan (or why there is none) as one sticky comment",
        PLAN_EXIT="1", **PR_ENV,
    )  # fmt: skip
    assert posted.returncode == 0, posted.stderr
    body = gh_calls(gh[1])[-1][-1].removeprefix("body=")
    assert body.startswith("<!-- reconciler-plan -->\n### Registry plan: failed (exit 1)")
    assert "was never applied to staging" in body
    failed = runner.run("pr.yml", "plan", "Fail when no plan could be made", PLAN_EXIT="1")
    assert failed.returncode == 1
    assert "::error title=reconciler plan failed::exit 1" in failed.stdout

    repo.write("environments/production.yaml", "stage: Production\n")
    repo.commit("no policy")
    runner.output.write_text("")
    assert runner.run("pr.yml", "plan", "plan").returncode == 0
    assert runner.outputs()["code"] == "0"
    runner.run(
        "pr.yml", "plan", "Post the plan (or why there is none) as one sticky comment",
        PLAN_EXIT="0", **PR_ENV,
    )  # fmt: skip
    body = gh_calls(gh[1])[-1][-1].removeprefix("body=")
    assert body.startswith("<!-- reconciler-plan -->\n### Registry plan: changes pending")


def test_pr_workflow_validate_annotates(repo: Repo) -> None:
    repo.write("environments/production/m.yaml", "model: m\nversion: 0\n")
    runner = Runner(repo.root, {})
    validated = runner.run(
        "pr.yml", "validate", "reconciler validate (problems become annotations on the diff)"
    )
    assert validated.returncode == 1
    assert validated.stdout.startswith(
        "::error file=environments/production/m.yaml,line=2,title=reconciler%3A version::"
    )


def test_reconcile_workflow_applies_every_environment_in_promotion_order(
    repo: Repo, seeder: Seeder, mlflow_server: str
) -> None:
    model = seeder.name("ordered")
    seeder.model(model, [0.5, 0.6, 0.7])
    install_ci_scripts(repo.root)
    repo.write("environments/dev.yaml", "alias: dev\n")
    repo.write("environments/canary.yaml", "alias: canary\nrequires: production\n")
    repo.pin("dev", model, 3)
    repo.pin("staging", model, 2)
    repo.pin("production", model, 1)
    repo.pin("canary", model, 1)
    repo.commit("pins in four environments")
    runner = Runner(repo.root, {"MLFLOW_TRACKING_URI": mlflow_server})

    ordered = runner.run("reconcile.yml", "order", "order")
    assert ordered.returncode == 0, ordered.stderr
    assert "promotion order: dev → staging → production → canary" in ordered.stdout
    outputs = runner.outputs()
    assert (outputs["before"], outputs["gated"]) == (
        '["dev", "staging"]',
        '["production", "canary"]',
    )

    for job, environments in (("staging", outputs["before"]), ("production", outputs["gated"])):
        runner.output.write_text("")
        name = "reconciler apply, one environment at a time in promotion order"
        applied = runner.run("reconcile.yml", job, name, ENVIRONMENTS=environments)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        done = runner.run("reconcile.yml", job, "outputs")
        assert done.returncode == 0, done.stderr
        assert runner.outputs()["changed_models"] == f'["{model}"]'
    assert seeder.aliases(model) == {"dev": "3", "canary": "1"}
    assert seeder.stages(model) == {"1": PRODUCTION, "2": STAGING, "3": "None"}
    assert "| canary |" in runner.summary.read_text()


def test_reconcile_workflow_reports_a_failed_apply_without_a_traceback(repo: Repo) -> None:
    install_ci_scripts(repo.root)
    repo.pin("staging", "m", 1)
    repo.commit("pin")
    runner = Runner(repo.root, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    name = "reconciler apply, one environment at a time in promotion order"
    applied = runner.run("reconcile.yml", "staging", name, ENVIRONMENTS='["staging"]')
    assert applied.returncode == 1
    assert "::error title=reconcile: staging failed::" in applied.stdout
    done = runner.run("reconcile.yml", "staging", "outputs")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "apply failed (exit 1): cannot reach the registry" in runner.summary.read_text()
    assert runner.outputs()["changed"] == "false"


def test_drift_workflow_only_exit_2_is_drift(
    repo: Repo, seeder: Seeder, mlflow_server: str, gh: tuple[Path, Path]
) -> None:
    model = seeder.name("drift")
    seeder.model(model, [0.5, 0.6])
    seeder.stage(model, "1", PRODUCTION)
    install_ci_scripts(repo.root)
    repo.pin("production", model, 1)
    repo.commit("pin")
    env = {"REPOSITORY": "org/pins", "RUN_URL": "https://ci/run/2", "GH_TOKEN": "x"}
    report = "In sync, drift (open or update the issue), or a failed check"

    def check(uri: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        runner = Runner(repo.root, {"MLFLOW_TRACKING_URI": uri}, extra_path=gh[0])
        runner.output.write_text("")
        assert runner.run("drift.yml", "drift", "plan").returncode == 0
        code = runner.outputs()["code"]
        return code, runner.run("drift.yml", "drift", report, PLAN_EXIT=code, **env)

    code, in_sync = check(mlflow_server)
    assert (code, in_sync.returncode, gh_calls(gh[1])) == ("0", 0, [])

    code, failed = check("http://127.0.0.1:9")
    assert (code, failed.returncode, gh_calls(gh[1])) == ("1", 1, [])
    assert "::error title=Drift check failed (exit 1)::" in failed.stdout

    seeder.stage(model, "2", PRODUCTION, archive=True)  # a hand edit in the MLflow UI
    code, drifted = check(mlflow_server)
    assert (code, drifted.returncode) == ("2", 1)
    assert [call[:2] for call in gh_calls(gh[1])] == [["issue", "list"], ["issue", "create"]]
    assert "::error title=Registry drift::" in drifted.stdout


def test_promote_and_propose_workflows_make_branch_names_from_any_model_name(
    repo: Repo, seeder: Seeder, mlflow_server: str
) -> None:
    """Model names may hold spaces, brackets and dots; git branch names may not."""
    model = seeder.name("sp ace[1].v")
    seeder.model(model, [0.5, 0.6])
    repo.pin("staging", model, 2)
    repo.pin("production", model, 1)
    repo.commit("pins")
    runner = Runner(repo.root, {"MLFLOW_TRACKING_URI": mlflow_server})
    promoted = runner.run(
        "promote.yml", "promote", "Edit the pin on a branch",
        MODEL=model, TARGET="production", VERSION="", GITHUB_RUN_ID="77",
        GITHUB_ENV=str(repo.root.parent / "github_env"),
    )  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    branch = repo.git("rev-parse", "--abbrev-ref", "HEAD").strip()
    assert (
        branch
        == f"promote/{model.replace(' ', '-').replace('[', '-').replace(']', '-').replace('.', '-')}-production-77"
    )
    assert json.loads((repo.root / "promote.json").read_text())["new_version"] == "2"
    repo.git("switch", "-q", "main")
    proposed = runner.run(
        "propose.yml", "propose", "Pin the candidate in staging and check the gates",
        MODEL=model, VERSION="1",
    )  # fmt: skip
    assert proposed.returncode == 0, proposed.stderr
    assert (
        repo.git("rev-parse", "--abbrev-ref", "HEAD").strip().startswith("candidate/sp-ace-1--v-")
    )
