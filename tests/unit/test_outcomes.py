"""Every outcome readable by machines and people (issue 8 §5): the JSON error document on stdout
for every command with `--format json`, exit codes that never collide with 2, global options
after the command, `validate --format json|github`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import AppContext, cli
from reconciler.errors import RegistryUnreachable
from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli, make_runner

BAD_PIN = "model: m\nversion: 0\n"


def document(stdout: str) -> dict[str, Any]:
    parsed = json.loads(stdout)  # the whole of stdout is one document
    assert isinstance(parsed, dict)
    return parsed


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--format", "json"],
        ["apply", "--format", "json"],
        ["status", "--format", "json"],
        ["validate", "--format", "json"],
        ["--debug", "plan", "--format=json"],
    ],
)
def test_invalid_input_is_a_json_document(repo: Repo, run: RunCli, args: list[str]) -> None:
    repo.write("environments/production/m.yaml", BAD_PIN)
    repo.commit("bad pin")
    result = run(*args)
    assert result.exit_code == 1
    assert document(result.stdout) == {
        "error": {
            "message": "1 problem(s) found; nothing was changed in the registry.",
            "exit_code": 1,
            "problems": [
                {
                    "file": "environments/production/m.yaml",
                    "line": 2,
                    "field": "version",
                    "message": "'0' is not a model version: versions start at 1",
                }
            ],
        }
    }
    # People keep the one-line errors on stderr.
    assert "error: environments/production/m.yaml:2: version: '0' is not a model version" in (
        result.stderr
    )


class _Unreachable(FakeRegistry):
    def read(self, models: Any) -> Any:
        raise RegistryUnreachable("cannot reach the registry at http://***@host: timed out")


def test_a_registry_error_and_a_bug_are_json_documents(repo: Repo) -> None:
    repo.pin("production", "m", 1)
    repo.commit("pin")
    result = make_runner(repo.root, _Unreachable())("plan", "--format", "json")
    assert result.exit_code == 1
    assert document(result.stdout) == {
        "error": {
            "message": "cannot reach the registry at http://***@host: timed out",
            "exit_code": 1,
        }
    }
    assert result.stderr == "error: cannot reach the registry at http://***@host: timed out\n"

    def broken(_uri: str | None) -> object:
        raise ZeroDivisionError("at http://bot:hunter2@host")

    obj = AppContext(root=repo.root, registry_factory=broken)  # type: ignore[arg-type]
    bug = CliRunner().invoke(cli, ["status", "--format", "json"], obj=obj)
    assert bug.exit_code == 3
    error = document(bug.stdout)["error"]
    assert error["exit_code"] == 3
    assert error["message"].startswith(
        "internal error (a bug, please report it): ZeroDivisionError"
    )
    assert "hunter2" not in bug.stdout + bug.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["history", "nowhere", "--format", "json"],
        ["promote", "m", "--to", "production", "--version", "0x1", "--format", "json"],
        ["promote", "m", "--to", "production", "--format", "json"],
    ],
)
def test_history_and_promote_failures_are_json_documents(
    repo: Repo, run: RunCli, args: list[str]
) -> None:
    repo.pin("production", "m", 1)
    repo.commit("pin")
    result = run(*args)
    assert result.exit_code == 1, result.stderr
    error = document(result.stdout)["error"]
    assert error["exit_code"] == 1
    assert error["message"] in result.stderr


def test_text_formats_print_no_document(repo: Repo, run: RunCli) -> None:
    repo.write("environments/production/m.yaml", BAD_PIN)
    for args in (["plan"], ["plan", "--format", "markdown"], ["validate"]):
        result = run(*args)
        assert (result.exit_code, result.stdout) == (1, ""), args


def test_a_new_command_gets_the_json_document_for_free(repo: Repo, run: RunCli) -> None:
    @click.command("tmp-probe")
    @click.option("--format", "output_format", type=click.Choice(["text", "json"]))
    def probe(output_format: str) -> None:
        """A command someone adds later."""
        raise RegistryUnreachable("no answer")

    cli.add_command(probe)
    try:
        result = run("tmp-probe", "--format", "json")
        text = run("tmp-probe")
    finally:
        del cli.commands["tmp-probe"]
    assert result.exit_code == 1
    assert document(result.stdout) == {"error": {"message": "no answer", "exit_code": 1}}
    assert (text.exit_code, text.stdout, text.stderr) == (1, "", "error: no answer\n")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["plan", "--bogus"], "No such option '--bogus'."),
        (["plan", "--format", "yaml"], "Invalid value for '--format'"),
        (["promote", "m"], "Missing option '--to'"),
        (["history"], "Missing argument 'MODEL'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["--bogus", "plan"], "No such option '--bogus'."),
        (["apply", "--lease-wait", "-1"], "Invalid value for '--lease-wait'"),
    ],
)
def test_usage_errors_exit_64_never_2(repo: Repo, run: RunCli, args: list[str], says: str) -> None:
    repo.pin("production", "m", 1)
    result = run(*args)
    assert result.exit_code == 64, result.stderr
    assert says in result.stderr
    assert result.stdout == ""


def test_a_usage_error_in_json_mode_is_a_json_document(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "m", 1)
    result = run("status", "--format", "json", "--bogus")
    assert result.exit_code == 64
    assert document(result.stdout) == {
        "error": {"message": "No such option '--bogus'.", "exit_code": 64}
    }
    assert "No such option '--bogus'." in result.stderr


def test_plan_detailed_exitcode_alone_exits_2(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    repo.pin("production", "m", 2)
    assert run("plan", "--detailed-exitcode").exit_code == 2


def _broken(_uri: str | None) -> object:
    raise ZeroDivisionError("boom")


@pytest.mark.parametrize(
    "args",
    [["--traceback", "plan"], ["plan", "--traceback"], ["plan", "--format", "json", "--traceback"]],
)
def test_traceback_before_or_after_the_command(repo: Repo, args: list[str]) -> None:
    repo.pin("production", "m", 1)
    obj = AppContext(root=repo.root, registry_factory=_broken)  # type: ignore[arg-type]
    result = CliRunner().invoke(cli, args, obj=obj)
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr


@pytest.mark.parametrize(
    "args", [["--debug", "validate"], ["validate", "--debug"], ["--debug", "validate", "--debug"]]
)
def test_debug_before_or_after_the_command_logs_once(repo: Repo, args: list[str]) -> None:
    import logging

    repo.pin("production", "m", 1)

    @click.command("tmp-log")
    def log_once() -> None:
        """Logs one line."""
        logging.getLogger("reconciler.test").debug("one request")

    cli.add_command(log_once)
    handlers = list(logging.getLogger().handlers)
    try:
        result = CliRunner().invoke(
            cli, [a if a != "validate" else "tmp-log" for a in args], obj=AppContext(root=repo.root)
        )
    finally:
        del cli.commands["tmp-log"]
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == ["debug: reconciler.test: one request"]
    assert logging.getLogger().handlers == handlers  # removed when the command ends


def test_validate_json_lists_environments_in_promotion_order(repo: Repo, run: RunCli) -> None:
    repo.write("environments/canary.yaml", "alias: canary\nrequires: production\n")
    repo.write("environments/dev.yaml", "alias: dev\n")
    repo.write("environments/qa.yaml", "alias: qa\n")
    repo.write("environments/staging.yaml", "stage: Staging\nrequires: qa\n")
    repo.pin("production", "m", 3)
    repo.pin("staging", "m", 4)
    repo.pin("canary", "m", 3)
    repo.pin("dev", "m", 5)
    repo.pin("qa", "m", 4)
    result = run("validate", "--format", "json")
    assert result.exit_code == 0, result.stderr
    parsed = document(result.stdout)
    assert [env["name"] for env in parsed["environments"]] == [
        "dev",
        "qa",
        "staging",
        "production",
        "canary",
    ]
    assert parsed["pins"] == 5
    assert parsed["environments"][2] == {
        "name": "staging",
        "stage": "Staging",
        "alias": None,
        "requires": "qa",
        "pins": 1,
    }


def test_validate_github_format_on_success(repo: Repo, run: RunCli, tmp_path: Path) -> None:
    repo.pin("production", "m", 1)
    result = run("validate", "--format", "github")
    assert result.exit_code == 0
    assert result.stdout == "ok: 1 pin(s) in 1 environment(s) are valid\n"


def test_a_closed_stdout_is_said_in_one_line_not_a_bug(repo: Repo) -> None:
    """`reconciler validate | head -0`: the reader is gone before the first line."""
    repo.pin("production", "m", 1)
    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", "validate"],
            cwd=repo.root,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "error: standard output was closed before the command finished printing\n"
    )
