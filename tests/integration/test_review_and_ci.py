"""Issue 4's pieces against a real `mlflow server`: the review plan with real run metrics and UI
links, promote's registry fallback, status; and the workflows' jobs (issue 16) run with the real
CLI through the action `init` pins."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reconciler.ci import comment
from reconciler.pins.values import PRODUCTION, STAGING
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.workflow import Runner, cached_tool, scaffold_action

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
    body = comment.render(plan.stdout)
    assert body.startswith("<!-- reconciler-plan -->\n### Registry plan: changes pending")

    applied = run("apply", "--model", model, "--format", "json")
    assert applied.exit_code == 0, applied.stderr
    records = tmp_path / "apply.json"
    records.write_text(applied.stdout)
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert run("ci", "apply-outputs", str(records)).exit_code == 0
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


# -- the workflows' jobs, run here with the real CLI (tests/support/workflow.py): this repository's
# workflows (init's templates) through the action init pins (.github/actions/reconciler), the
# action at the root standing in for the release, its cache holding this environment's tool.

TOOL = Path(sys.executable).parent


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
        "sys.stdout.write('[]' if sys.argv[1] in ('issue', 'pr') else '')\n"
    )
    script.chmod(0o755)
    return folder, log


def gh_calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


PULL_REQUEST = {"pull_request": {"number": 7, "head": {"repo": {"full_name": "org/pins"}}}}


def runner_for(repo: Repo, uri: str, gh: tuple[Path, Path] | None = None, **github: Any) -> Runner:
    """The repository's runner: the registry is the secret the workflows read."""
    scaffold_action(repo.root)
    runner = Runner(
        repo.root, {}, extra_path=gh[0] if gh else None, github=github,
        secrets={"MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    cached_tool(runner, TOOL)
    return runner


def test_pr_workflow_comments_the_plan_or_why_it_failed(
    repo: Repo, seeder: Seeder, mlflow_server: str, gh: tuple[Path, Path]
) -> None:
    model = seeder.name("pr")
    seeder.model(model, [0.5, 0.6])
    seeder.stage(model, "1", PRODUCTION)
    repo.write("environments/production.yaml", "requires: staging\n")
    repo.pin("staging", model, 1)
    repo.pin("production", model, 2)  # v2 never reached staging: the policy refuses it
    repo.commit("promote without staging")
    runner = runner_for(repo, mlflow_server, gh, event=PULL_REQUEST)

    failed = runner.job("pr.yml", "plan")
    assert not failed.ok
    plan = failed.step("reconciler plan")
    assert (plan.outcome, plan.outputs["exit-code"]) == ("success", "1")
    plan_md = Path(plan.outputs["plan-file"]).read_text()
    assert "::error" not in plan_md  # annotations never share stdout with the plan file
    assert f"::error file=environments/production/{model}.yaml" in plan.stderr
    body = gh_calls(gh[1])[-1][-1].removeprefix("body=")
    assert gh_calls(gh[1])[-1][:4] == [
        "api",
        "--method",
        "POST",
        "repos/org/pins/issues/7/comments",
    ]
    assert body.startswith("<!-- reconciler-plan -->\n### Registry plan: failed (exit 1)")
    assert "was never applied to staging" in body
    assert "[Workflow run](https://github.example/org/pins/actions/runs/1)" in body
    said = failed.step("Fail when no plan could be made")
    assert said.outcome == "failure"
    assert "::error title=reconciler plan failed::exit 1" in said.stdout

    repo.write("environments/production.yaml", "stage: Production\n")
    repo.commit("no policy")
    passed = runner.job("pr.yml", "plan")
    assert passed.ok, passed.log
    assert passed.step("reconciler plan").outputs["changes-pending"] == "true"
    assert passed.step("Fail when no plan could be made").outcome == "skipped"
    body = gh_calls(gh[1])[-1][-1].removeprefix("body=")
    assert body.startswith("<!-- reconciler-plan -->\n### Registry plan: changes pending")


def test_pr_workflow_validate_annotates(repo: Repo) -> None:
    repo.write("environments/production/m.yaml", "model: m\nversion: 0\n")
    runner = runner_for(repo, "http://127.0.0.1:9")
    validated = runner.job("pr.yml", "validate")
    assert not validated.ok
    step = validated.step("reconciler validate (problems become annotations on the diff)")
    assert step.outcome == "failure"
    assert (
        "::error file=environments/production/m.yaml,line=2,title=reconciler%3A version::"
        in step.stdout
    )


def test_reconcile_workflow_applies_every_environment_in_promotion_order(
    repo: Repo, seeder: Seeder, mlflow_server: str
) -> None:
    model = seeder.name("ordered")
    seeder.model(model, [0.5, 0.6, 0.7])
    repo.write("environments/dev.yaml", "alias: dev\n")
    repo.write("environments/canary.yaml", "alias: canary\nrequires: production\n")
    repo.pin("dev", model, 3)
    repo.pin("staging", model, 2)
    repo.pin("production", model, 1)
    repo.pin("canary", model, 1)
    runner = runner_for(repo, mlflow_server)
    repo.commit("pins in four environments")

    ordered = runner.job("reconcile.yml", "order")
    assert ordered.ok, ordered.log
    assert "promotion order: dev → staging → production → canary" in ordered.log
    assert (ordered.outputs["before"], ordered.outputs["gated"]) == (
        '["dev", "staging"]',
        '["production", "canary"]',
    )
    needs: dict[str, dict[str, Any]] = {"order": {"result": "success", "outputs": ordered.outputs}}
    staging = runner.job("reconcile.yml", "staging", needs=needs)
    assert staging.ok, staging.log
    assert staging.outputs["changed_models"] == f'["{model}"]'
    needs["staging"] = {"result": "success", "outputs": staging.outputs}
    production = runner.job("reconcile.yml", "production", needs=needs)
    assert production.ok, production.log
    assert production.outputs["changed_models"] == f'["{model}"]'
    assert seeder.aliases(model) == {"dev": "3", "canary": "1"}
    assert seeder.stages(model) == {"1": PRODUCTION, "2": STAGING, "3": "None"}
    assert "| canary |" in runner.summary.read_text()
    assert (runner.temp / "reconcile" / "verify-canary.json").is_file()  # nothing to verify: ok
    needs["production"] = {"result": "success", "outputs": production.outputs}
    assert runner.job("reconcile.yml", "revert", needs=needs).steps[0].outcome == "skipped"


def test_reconcile_workflow_reports_a_failed_apply_without_a_traceback(
    repo: Repo, gh: tuple[Path, Path]
) -> None:
    repo.pin("staging", "m", 1)
    runner = runner_for(repo, "http://127.0.0.1:9", gh)
    repo.commit("pin")
    needs: dict[str, dict[str, Any]] = {
        "order": {"result": "success", "outputs": {"before": '["staging"]', "gated": "[]"}}
    }
    applied = runner.job("reconcile.yml", "staging", needs=needs)
    assert not applied.ok
    assert "::error title=reconcile: staging failed::" in applied.log
    assert applied.step("outputs").outcome == "success"
    assert "Traceback" not in applied.log
    assert "apply failed (exit 1): cannot reach the registry" in runner.summary.read_text()
    assert applied.outputs["changed_models"] == "[]"
    # A failed apply is not the merge's fault: the revert job finds no verify report.
    needs.update(staging={"result": "failure"}, production={"result": "skipped"})
    reverted = runner.job("reconcile.yml", "revert", needs=needs)
    assert reverted.ok, reverted.log
    assert "no verify report: nothing to revert" in reverted.log
    assert gh_calls(gh[1]) == []


def test_drift_workflow_only_exit_2_is_drift(
    repo: Repo, seeder: Seeder, mlflow_server: str, gh: tuple[Path, Path]
) -> None:
    model = seeder.name("drift")
    seeder.model(model, [0.5, 0.6])
    seeder.stage(model, "1", PRODUCTION)
    repo.pin("production", model, 1)
    repo.commit("pin")
    report = "In sync, drift (open or update the issue), or a failed check"

    def check(uri: str) -> Any:
        return runner_for(repo, uri, gh).job("drift.yml", "drift")

    in_sync = check(mlflow_server)
    assert (
        in_sync.ok,
        in_sync.step("reconciler plan --detailed-exitcode").outputs["exit-code"],
    ) == (True, "0")
    assert gh_calls(gh[1]) == []

    failed = check("http://127.0.0.1:9")
    assert not failed.ok
    assert "::error title=Drift check failed (exit 1)::" in failed.step(report).stdout
    assert gh_calls(gh[1]) == []

    seeder.stage(model, "2", PRODUCTION, archive=True)  # a hand edit in the MLflow UI
    drifted = check(mlflow_server)
    assert not drifted.ok
    assert drifted.step("reconciler plan --detailed-exitcode").outputs["changes-pending"] == "true"
    assert [call[:2] for call in gh_calls(gh[1])] == [["issue", "list"], ["issue", "create"]]
    assert "::error title=Registry drift::" in drifted.step(report).stdout


def test_promote_and_propose_workflows_make_branch_names_from_any_model_name(
    repo: Repo, seeder: Seeder, mlflow_server: str, gh: tuple[Path, Path], tmp_path: Path
) -> None:
    """Model names may hold spaces, brackets and dots; git branch names may not."""
    model = seeder.name("sp ace[1].v")
    seeder.model(model, [0.5, 0.6])
    origin = tmp_path / "origin.git"
    repo.git("init", "-q", "--bare", str(origin))
    repo.git("remote", "add", "origin", str(origin))
    repo.pin("staging", model, 2)
    repo.pin("production", model, 1)
    runner = runner_for(repo, mlflow_server, gh, run_id="77")
    repo.commit("pins")
    promoted = runner.job("promote.yml", "promote", inputs={"model": model})
    assert promoted.ok, promoted.log
    safe = model.replace(" ", "-").replace("[", "-").replace("]", "-").replace(".", "-")
    branch = f"promote/{safe}-production-77"
    assert repo.git(f"--git-dir={origin}", "branch", "--list").split() == [branch]
    assert gh_calls(gh[1])[-1][:4] == ["pr", "create", "--head", branch]
    assert json.loads((runner.temp / "promote.json").read_text())["new_version"] == "2"

    repo.git("switch", "-q", "main")
    proposed = runner.job("propose.yml", "propose", inputs={"model": model, "version": "1"})
    assert proposed.ok, proposed.log
    candidate = f"candidate/{model.replace(' ', '-').replace('[', '-').replace(']', '-').replace('.', '-')}-v1"
    assert candidate in repo.git(f"--git-dir={origin}", "branch", "--list").split()
    assert gh_calls(gh[1])[-1][:4] == ["pr", "create", "--head", candidate]


@pytest.fixture
def stale_serving() -> Iterator[str]:
    """A serving backend that never follows: its health answers version 1, whatever is pinned."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "version": "1"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_reconcile_opens_a_revert_pull_request_when_serving_does_not_follow(
    repo: Repo,
    seeder: Seeder,
    mlflow_server: str,
    gh: tuple[Path, Path],
    tmp_path: Path,
    stale_serving: str,
) -> None:
    model = seeder.name("stale")
    seeder.model(model, [0.5, 0.6])
    seeder.stage(model, "1", PRODUCTION)
    origin = tmp_path / "origin.git"
    repo.git("init", "-q", "--bare", str(origin))
    repo.git("remote", "add", "origin", str(origin))
    repo.write(
        "environments/production.yaml",
        f"stage: Production\nserving:\n  url: {stale_serving}/{{model}}/health\n"
        "  timeout: 1s\n  interval: 1s\n",
    )
    repo.pin("production", model, 1)
    scaffold_action(repo.root)
    before = repo.commit("serving v1")
    repo.pin("production", model, 2)
    merge = repo.commit("Promote to v2")
    repo.git("push", "-q", "origin", "main")
    event = {"before": before, "repository": {"default_branch": "main"}}
    runner = runner_for(repo, mlflow_server, gh, sha=merge, event=event)

    needs: dict[str, dict[str, Any]] = {
        "order": {"result": "success", "outputs": {"before": "[]", "gated": '["production"]'}},
        "staging": {"result": "skipped", "outputs": {}},
    }
    applied = runner.job("reconcile.yml", "production", needs=needs)
    assert not applied.ok
    assert "::error title=reconcile: production serving does not follow the pins::" in applied.log
    assert seeder.stages(model)["2"] == PRODUCTION  # the registry changes stand
    # The artifact hand-over (upload in the apply job, download in the revert job).
    (runner.temp / "verify").mkdir()
    for report in (runner.temp / "reconcile").glob("verify-*.json"):
        shutil.copy(report, runner.temp / "verify" / report.name)

    needs["production"] = {"result": "failure", "outputs": applied.outputs}
    reverted = runner.job("reconcile.yml", "revert", needs=needs)
    assert reverted.ok, reverted.log
    branch = f"revert/{merge[:12]}"
    assert f"revert pull request created ({branch})" in reverted.log
    shown = subprocess.run(
        ["git", f"--git-dir={origin}", "show", f"{branch}:environments/production/{model}.yaml"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert shown == f"model: {model}\nversion: 1\n"
    assert repo.git(f"--git-dir={origin}", "rev-parse", "main").strip() == merge
    calls = gh_calls(gh[1])
    assert calls[0] == ["auth", "setup-git"]
    assert calls[-1][:8] == [
        "pr",
        "create",
        "--repo",
        "org/pins",
        "--base",
        "main",
        "--head",
        branch,
    ]
    assert (
        f"| production | `{model}` | v2 | v1 | serves v1 |" in calls[-1][-1]
    )  # name in a code span
