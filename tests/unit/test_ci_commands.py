"""`reconciler ci ...`, the glue the GitHub workflows run, tested through the CLI: GitHub is not
reachable from the test machines, so `gh` is a recording stand-in that answers from a canned
reply."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.ci import comment as sticky
from reconciler.ci import drift, order, outputs, revert
from reconciler.cli import cli
from tests.conftest import Repo


def ci(*args: str, cwd: Path | None = None) -> Result:
    """`reconciler ci ARGS` in this process, from `cwd` (the repository for revert-pr)."""
    here = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, ["ci", *args], catch_exceptions=False)
    finally:
        os.chdir(here)


@pytest.fixture
def gh(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A `gh` that records its arguments (one JSON line per call) and prints `reply.txt`."""
    log, reply = tmp_path / "gh.log", tmp_path / "reply.txt"
    reply.write_text("")
    script = tmp_path / "gh"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "# A body given as a file is logged as its text (the file is gone after the call).\n"
        "if '--body-file' in args:\n"
        "    at = args.index('--body-file') + 1\n"
        "    args[at - 1:at + 1] = ['--body', open(args[at]).read()]\n"
        f"open({str(log)!r}, 'a').write(json.dumps(args) + '\\n')\n"
        f"sys.stdout.write(open({str(reply)!r}).read())\n"
    )
    script.chmod(0o755)
    return script, log, reply


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_comment_is_marked_collapsed_and_capped() -> None:
    short = sticky.render("### Registry plan: in sync\n\nok", "https://ci/run/1")
    assert (
        short
        == "<!-- reconciler-plan -->\n### Registry plan: in sync\n\nok\n\n[Workflow run](https://ci/run/1)"
    )
    long_plan = "### Registry plan: changes pending\n" + "\n".join(
        f"| row {i} |" for i in range(100)
    )
    collapsed = sticky.render(long_plan)
    assert "<details><summary>Full plan (101 lines)</summary>" in collapsed
    assert collapsed.endswith("</details>")
    huge = "### Registry plan: changes pending\n" + "\n".join(
        "| " + "x" * 200 + " |" for _ in range(1000)
    )
    capped = sticky.render(huge)
    assert len(capped) <= sticky.LIMIT
    assert "plan truncated" in capped
    assert capped.count("<details>") == capped.count("</details>")


def test_sticky_comment_is_updated_in_place(gh: tuple[Path, Path, Path]) -> None:
    script, log, reply = gh
    bot = "github-actions[bot]"
    reply.write_text(
        json.dumps({"id": 7, "body": "nice", "author": "someone"})
        + "\n"
        # Anyone may start a comment with the marker: only ours is updated (hostile review).
        + json.dumps({"id": 8, "body": sticky.MARKER + "\nforged", "author": "someone"})
        + "\n"
        + json.dumps({"id": 9, "body": sticky.MARKER + "\nold", "author": bot})
        + "\n"
    )
    assert (
        sticky.upsert("org/repo", 42, "<!-- reconciler-plan -->\nnew", command=str(script))
        == "updated"
    )
    assert calls(log)[-1] == [
        "api",
        "--method",
        "PATCH",
        "repos/org/repo/issues/comments/9",
        "--raw-field",
        "body=<!-- reconciler-plan -->\nnew",
    ]
    reply.write_text(json.dumps({"id": 8, "body": sticky.MARKER, "author": "someone"}) + "\n")
    assert sticky.upsert("org/repo", 42, "@body", command=str(script)) == "created"
    assert calls(log)[-1] == [
        "api",
        "--method",
        "POST",
        "repos/org/repo/issues/42/comments",
        "--raw-field",
        "body=@body",
    ]


def test_sticky_comment_main_writes_the_summary(
    gh: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, _log, _reply = gh
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    plan = tmp_path / "plan.md"
    plan.write_text("### Registry plan: in sync\n")
    done = ci("sticky-comment", str(plan), "--pr", "3", "--repo", "org/repo")
    assert done.exit_code == 0, done.output
    assert done.stdout == "plan comment created on #3\n"
    assert summary.read_text() == "### Registry plan: in sync\n\n"


def test_apply_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [
        {"model_name": "churn", "environment": "production", "new_version": "15", "new_stage": "Production",
         "archived_versions": ["6"], "promoted": True, "already_promoted": False, "outcome": "applied"},
        {"model_name": "fraud", "environment": "production", "new_version": "3", "new_stage": "Production",
         "archived_versions": [], "promoted": False, "already_promoted": True, "outcome": "in_sync"},
        {"model_name": "legacy", "environment": "production", "new_version": None, "new_stage": "Archived",
         "archived_versions": ["4"], "promoted": False, "already_promoted": False, "outcome": "applied", "retired": True},
    ]  # fmt: skip
    path = tmp_path / "apply.json"
    path.write_text(json.dumps(records))
    out, summary = tmp_path / "out", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert ci("apply-outputs", str(path)).exit_code == 0
    assert out.read_text() == 'changed_models=["churn", "legacy"]\nchanged=true\n'
    assert summary.read_text().splitlines()[4:] == [
        "| production | `churn` | v15 | Production | v6 | applied |",
        "| production | `fraud` | v3 | Production | - | in sync |",
        "| production | `legacy` | - | Archived | v4 | retired |",
    ]


HOSTILE = "evil\n### Registry apply — all good\n<details>|`x`"


def test_ci_summaries_escape_model_names(tmp_path: Path) -> None:
    """The apply summary and the revert pull request put model names and errors from the
    registry into markdown tables: one row per record, whatever a name holds (issue 15 §7)."""
    from tests.support.markdown import render

    record = {"model_name": HOSTILE, "environment": "production", "new_version": "2",
              "new_stage": "Production", "archived_versions": [], "outcome": "applied"}  # fmt: skip
    summary = outputs.summary([record], [f"apply failed: {HOSTILE}"])
    shown = render(summary)
    assert [text for _, text in shown.headings] == ["Registry apply"]
    assert "details" not in shown.tags
    assert shown.tables == [[6, 6]]
    assert shown.codes == ["evil\\n### Registry apply — all good\\n<details>|`x`"]
    endpoint = {"environment": "production", "model": HOSTILE, "url": "http://s/|x",
                "expected_version": "2", "served_version": "1", "ok": False,
                "error": f"serves v1\n# {HOSTILE}"}  # fmt: skip
    body = render(revert.body(["a" * 40], [endpoint], None))
    assert body.headings == []
    assert "details" not in body.tags
    assert body.tables == [[6, 6]]


def test_drift_issue_is_created_then_updated(gh: tuple[Path, Path, Path]) -> None:
    script, log, reply = gh
    reply.write_text("[]")
    assert drift.upsert("org/repo", "plan", command=str(script)) == "created"
    assert calls(log)[-1] == [
        "issue",
        "create",
        "--repo",
        "org/repo",
        "--title",
        drift.TITLE,
        "--body",
        "plan",
    ]
    ours = {"login": "app/github-actions"}
    reply.write_text(
        json.dumps(
            [
                {"number": 4, "title": drift.TITLE, "author": {"login": "someone"}},
                {"number": 5, "title": drift.TITLE, "author": ours},
            ]
        )
    )
    assert drift.upsert("org/repo", "plan 2", command=str(script)) == "updated #5"
    assert calls(log)[-1] == ["issue", "edit", "5", "--repo", "org/repo", "--body", "plan 2"]
    # Over GitHub's limit for an issue body, and over the command line's: cut, sent as a file.
    huge = "| row |\n" * 50_000
    assert drift.upsert("org/repo", huge, command=str(script)) == "updated #5"
    sent = calls(log)[-1][-1]
    assert len(sent) <= drift.BODY_LIMIT
    assert sent.endswith("the run's log has it all.")
    assert drift.body("### plan", "https://ci/run/2").startswith(drift.MARKER)


def _verify_report(path: Path, ok: bool, interrupted: bool = False) -> Path:
    endpoint = {
        "environment": "production",
        "model": "churn",
        "url": "https://***@serving.example/churn/health",
        "expected_version": "2",
        "served_version": "2" if ok else "1",
        "ok": ok,
        "error": None if ok else "serves v1",
        "seconds": 300.0,
        "polls": 60,
        "interrupted": interrupted,
    }
    path.write_text(json.dumps({"ok": ok, "endpoints": [endpoint]}))
    return path


def test_revert_pull_request_reverts_the_merge_on_its_own_branch(
    tmp_path: Path, gh: tuple[Path, Path, Path], repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, log, reply = gh
    origin = tmp_path / "origin.git"
    repo.git("init", "-q", "--bare", str(origin))
    repo.git("remote", "add", "origin", str(origin))
    repo.pin("production", "churn", 1)
    repo.commit("pin churn v1")
    repo.git("switch", "-q", "-c", "promote")
    repo.pin("production", "churn", 2)
    repo.commit("promote churn v2")
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge pull request #7", "promote")
    before = repo.git("rev-parse", "main~1").strip()
    merge = repo.git("rev-parse", "main").strip()
    repo.git("push", "-q", "origin", "main")
    failed = _verify_report(tmp_path / "verify-production.json", ok=False)
    passed = _verify_report(tmp_path / "verify-staging.json", ok=True)

    argv = ["--repo", "org/repo", "--commit", merge, "--since", before, "--base", "main"]
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    done = ci("revert-pr", *argv, str(passed), str(failed), cwd=repo.root)
    assert done.exit_code == 0, done.output
    assert done.stdout == f"revert pull request created (revert/{merge[:12]})\n"
    branch = f"revert/{merge[:12]}"
    # The default branch is untouched; the revert is a branch holding the old pin.
    assert repo.git(f"--git-dir={origin}", "rev-parse", "main").strip() == merge
    shown = subprocess.run(
        ["git", f"--git-dir={origin}", "show", f"{branch}:environments/production/churn.yaml"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert shown == "model: churn\nversion: 1\n"
    create = calls(log)[-1]
    assert create[:9] == [
        "pr",
        "create",
        "--repo",
        "org/repo",
        "--base",
        "main",
        "--head",
        branch,
        "--title",
    ]
    assert create[9] == f"Revert {merge[:12]}: serving did not follow the pins"
    text = create[-1]
    assert text.startswith(revert.MARKER)
    assert (
        "| production | `churn` | v2 | v1 | serves v1 | `https://***@serving.example/churn/health` |"
        in text
    )
    assert "staging" not in text  # only the failing endpoints

    # Run again (production after staging, or a re-run), a second later: one pull request,
    # commented on, and the pushed revert stays as it is (a new revert commit would not
    # fast-forward and the push would fail).
    pushed = repo.git(f"--git-dir={origin}", "rev-parse", branch).strip()
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2030-01-01T00:00:00Z")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2030-01-01T00:00:00Z")
    reply.write_text(json.dumps([{"number": 12}]))
    assert ci("revert-pr", *argv, str(failed), cwd=repo.root).exit_code == 0
    assert calls(log)[-1][:3] == ["pr", "comment", "12"]
    assert repo.git(f"--git-dir={origin}", "rev-parse", branch).strip() == pushed


def test_no_revert_without_a_failing_endpoint(
    tmp_path: Path, gh: tuple[Path, Path, Path], repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, log, _ = gh
    repo.pin("production", "churn", 1)
    head = repo.commit("pin")
    missing = tmp_path / "verify.json"  # verify could not start: no report
    passed = _verify_report(tmp_path / "ok.json", ok=True)
    # A verify stopped by a signal (the job cancelled) reports what it saw so far: no verdict.
    stopped = _verify_report(tmp_path / "stopped.json", ok=False, interrupted=True)
    argv = ["--repo", "o/r", "--commit", head, "--base", "main"]
    argv += [str(missing), str(passed), str(stopped)]
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    done = ci("revert-pr", *argv, cwd=repo.root)
    assert done.exit_code == 0, done.output
    assert done.stdout == "no endpoint failed in the verify reports: nothing to revert\n"
    assert not log.exists()
    assert repo.git("branch", "--list").split() == ["*", "main"]


def test_a_revert_that_conflicts_is_refused_and_nothing_is_pushed(
    tmp_path: Path, gh: tuple[Path, Path, Path], repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, log, _ = gh
    origin = tmp_path / "origin.git"
    repo.git("init", "-q", "--bare", str(origin))
    repo.git("remote", "add", "origin", str(origin))
    repo.pin("production", "churn", 1)
    repo.commit("v1")
    repo.pin("production", "churn", 2)
    promoted = repo.commit("v2")
    repo.pin("production", "churn", 3)
    repo.commit("v3")  # the default branch moved on: the v2 pin is gone already
    repo.git("push", "-q", "origin", "main")
    failed = _verify_report(tmp_path / "verify.json", ok=False)
    argv = ["--repo", "o/r", "--commit", promoted, "--base", "main", str(failed)]
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    done = ci("revert-pr", *argv, cwd=repo.root)
    assert done.exit_code == 1
    assert "does not revert cleanly" in done.stderr
    assert not log.exists()
    assert repo.git(f"--git-dir={origin}", "branch", "--list").split() == ["main"]


@pytest.mark.parametrize(
    ("content", "note"),
    [
        pytest.param(None, "apply-staging.json: no output (apply did not run)", id="missing"),
        pytest.param("", "apply-staging.json: apply printed nothing", id="empty"),
        pytest.param('[{"model_na', "apply-staging.json: not JSON", id="cut-short"),
        pytest.param(
            '{"error": {"message": "lease held", "exit_code": 1}}',
            "apply-staging.json: apply failed (exit 1): lease held",
            id="error-document",
        ),
    ],
)
def test_apply_outputs_never_tracebacks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    note: str,
) -> None:
    path = tmp_path / "apply-staging.json"
    if content is not None:
        path.write_text(content)
    out, summary = tmp_path / "out", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    done = ci("apply-outputs", str(path))
    assert done.exit_code == 0
    assert out.read_text() == "changed_models=[]\nchanged=false\n"
    assert note in summary.read_text()
    assert note in done.stdout


def test_apply_outputs_merges_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = {"environment": "dev", "model_name": "a", "new_version": "2", "new_stage": "@dev",
              "promoted": True, "already_promoted": False, "outcome": "applied"}  # fmt: skip
    (tmp_path / "apply-dev.json").write_text(json.dumps([record]))
    (tmp_path / "apply-staging.json").write_text(json.dumps([{**record, "model_name": "b"}]))
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    paths = [str(tmp_path / "apply-dev.json"), str(tmp_path / "apply-staging.json")]
    assert ci("apply-outputs", *paths).exit_code == 0
    assert out.read_text() == 'changed_models=["a", "b"]\nchanged=true\n'


def test_failed_plan_still_gets_a_comment_saying_why(
    gh: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, log, _reply = gh
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    plan, errors = tmp_path / "plan.md", tmp_path / "plan.err"
    plan.write_text("")
    errors.write_text(
        "error: environments/production/m.yaml:2: policy: requires staging ```x```\n"
        "::error file=environments/production/m.yaml,line=2::requires staging\n"
        "error: 1 problem(s) found; nothing was changed in the registry.\n"
    )
    args = [str(plan), "--errors", str(errors), "--exit-code", "1", "--pr", "3", "--repo", "o/r"]
    assert ci("sticky-comment", *args).exit_code == 0
    body = calls(log)[-1][-1].removeprefix("body=")
    assert body.startswith("<!-- reconciler-plan -->\n### Registry plan: failed (exit 1)\n")
    assert "error: environments/production/m.yaml:2: policy: requires staging ```x```" in body
    assert "::error" not in body
    assert "\n````\n" in body  # a fence longer than any backtick run in the errors


@pytest.mark.parametrize(
    ("code", "returned", "says"),
    [
        (0, 0, "in sync"),
        (1, 1, "::error title=Drift check failed (exit 1)::the check failed"),
        (3, 3, "::error title=Drift check failed (exit 3)::a bug in reconciler"),
        (64, 64, "::error title=Drift check failed (exit 64)::a usage error"),
        (130, 130, "::error title=Drift check failed (exit 130)::interrupted"),
        (143, 143, "::error title=Drift check failed (exit 143)::cancelled"),
    ],
)
def test_only_exit_2_is_drift(
    gh: tuple[Path, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    code: int,
    returned: int,
    says: str,
) -> None:
    script, log, _reply = gh
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    plan = tmp_path / "plan.md"
    plan.write_text("")
    done = ci("drift-issue", str(plan), "--exit-code", str(code), "--repo", "o/r")
    assert done.exit_code == returned
    assert says in done.stdout
    assert not log.exists()  # no issue touched


def test_drift_opens_the_issue_and_fails(
    gh: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, log, reply = gh
    reply.write_text("[]")
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    plan = tmp_path / "plan.md"
    plan.write_text("### Registry plan: changes pending\n")
    assert ci("drift-issue", str(plan), "--exit-code", "2", "--repo", "o/r").exit_code == 1
    assert calls(log)[-1][:2] == ["issue", "create"]


def test_promotion_order_splits_at_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    envs: list[dict[str, Any]] = [{"name": "dev", "stage": None}, {"name": "staging", "stage": "Staging"},
            {"name": "production", "stage": "Production"}, {"name": "canary", "stage": None}]  # fmt: skip
    assert order.split(envs) == (["dev", "staging"], ["production", "canary"])
    assert order.split(envs[:2]) == (["dev", "staging"], [])
    validated = tmp_path / "environments.json"
    validated.write_text(json.dumps({"valid": True, "pins": 0, "environments": envs}))
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert ci("promotion-order", str(validated)).exit_code == 0
    assert out.read_text() == 'before=["dev", "staging"]\ngated=["production", "canary"]\n'


def test_apply_in_order_stops_at_the_first_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "calls"
    fake = tmp_path / "reconciler"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(sys.argv[3] + '\\n')\n"
        "if sys.argv[3] == 'staging':\n"
        "    print(json.dumps({'error': {'message': 'no', 'exit_code': 4}})); sys.exit(4)\n"
        "print('[]')\n"
    )
    fake.chmod(0o755)
    envs = json.dumps(["dev", "staging", "production"])
    done = ci("apply-in-order", envs, "--reconciler", str(fake), "--out-dir", str(tmp_path))
    assert done.exit_code == 4
    assert log.read_text().splitlines() == ["dev", "staging"]
    assert (tmp_path / "apply-dev.json").read_text() == "[]\n"
    assert "::error title=reconcile: staging failed::" in done.stdout
    assert not (tmp_path / "apply-production.json").exists()


def _fake_reconciler(tmp_path: Path, code: int, stdout: str) -> tuple[Path, Path]:
    """A `reconciler` that records its arguments, prints `stdout`, a line on stderr, exits."""
    log = tmp_path / "argv.json"
    fake = tmp_path / "fake-reconciler"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write({stdout!r})\n"
        "sys.stderr.write('error: something on stderr\\n')\n"
        f"sys.exit({code})\n"
    )
    fake.chmod(0o755)
    return fake, log


@pytest.mark.parametrize(
    ("command", "code", "failed", "pending"),
    [
        pytest.param("plan", 0, False, "false", id="plan-in-sync"),
        pytest.param("plan", 2, False, "true", id="plan-pending"),
        pytest.param("drift", 2, False, "true", id="drift"),
        pytest.param("plan", 1, True, "false", id="plan-failed"),
        pytest.param("validate", 2, True, "false", id="validate-2-is-no-plan"),
        pytest.param("plan", 3, True, "false", id="bug"),
    ],
)
def test_action_runs_one_command_and_writes_its_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, code: int, failed: bool,
    pending: str,
) -> None:  # fmt: skip
    fake, log = _fake_reconciler(tmp_path, code, "### Registry plan\n")
    out = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    args = ["action", "--command", command, "--environments", "staging\nproduction",
            "--args", "--model 'churn model'", "--out-dir", str(tmp_path / "out"),
            "--reconciler", str(fake)]  # fmt: skip
    done = ci(*args)
    assert done.exit_code == (code if failed else 0), done.output
    assert "error: something on stderr" in done.stderr
    argv = json.loads(log.read_text())
    assert argv[-6:] == ["--env", "staging", "--env", "production", "--model", "churn model"]
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert outputs["exit-code"] == str(code)
    assert outputs["changes-pending"] == pending
    assert outputs["changed-models"] == "[]"
    errors = Path(outputs["errors-file"]).read_text()
    assert errors == "error: something on stderr\n"
    if command == "validate":
        assert argv[:3] == ["validate", "--format", "github"]
        assert outputs["plan-file"] == ""
        assert "### Registry plan" in done.stdout  # annotations stay in the log
    else:
        assert argv[:4] == ["plan", "--format", "markdown", "--detailed-exitcode"]
        assert Path(outputs["plan-file"]).read_text() == "### Registry plan\n"
    kept = ci(*args, "--no-fail-on-error")
    assert kept.exit_code == 0


def test_action_apply_outputs_the_changed_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [
        {"model_name": "churn", "environment": "staging", "new_version": "2", "promoted": True},
        {"model_name": "fraud", "environment": "staging", "new_version": "1", "promoted": False,
         "already_promoted": True},
    ]  # fmt: skip
    fake, log = _fake_reconciler(tmp_path, 0, json.dumps(records))
    out, summary = tmp_path / "github_output", tmp_path / "summary"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    done = ci("action", "--command", "apply", "--out-dir", str(tmp_path / "o"),
              "--reconciler", str(fake))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(log.read_text()) == ["apply", "--format", "json"]
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert outputs["changed-models"] == '["churn"]'
    assert json.loads(Path(outputs["report-file"]).read_text()) == records
    assert "| staging | `churn` | v2 |" in summary.read_text()


def test_action_args_with_an_open_quote_are_a_usage_error(tmp_path: Path) -> None:
    done = ci("action", "--command", "plan", "--args", "--model 'churn", "--out-dir",
              str(tmp_path))  # fmt: skip
    assert done.exit_code == 64
    assert "Invalid value for --args: No closing quotation" in done.stderr


def test_a_failing_gh_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No token, no network, a rate limit: the step fails saying so, not as a bug (exit 3)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "gh").write_text("#!/bin/sh\necho 'HTTP 401: Bad credentials' >&2\nexit 4\n")
    (folder / "gh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    plan = tmp_path / "plan.md"
    plan.write_text("### Registry plan: in sync\n")
    done = ci("sticky-comment", str(plan), "--pr", "3", "--repo", "o/r")
    assert done.exit_code == 1
    assert done.stderr == "error: gh api --paginate failed (exit 4): HTTP 401: Bad credentials\n"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    missing = ci("drift-issue", str(plan), "--exit-code", "2", "--repo", "o/r")
    assert (missing.exit_code, missing.stderr) == (
        1,
        "error: gh (the GitHub CLI) is not installed\n",
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["promotion-order", "missing.json"], "No such file", id="missing-file"),
        pytest.param(["promotion-order", "bad.json"], "not JSON", id="not-json"),
        pytest.param(["apply-in-order", "not json"], "not JSON", id="argument-not-json"),
        pytest.param(["apply-in-order", '{"a": 1}'], "a JSON list", id="not-a-list"),
    ],
)
def test_bad_input_to_ci_commands_is_a_failed_step_not_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    """Hostile review: malformed files or arguments exited 3 ("a bug"), or applied env `a`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    done = ci(*args)
    assert done.exit_code == 1, done.output
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: ci {args[0]}: ")
    assert says in line
    assert not list(tmp_path.glob("apply-*.json"))
