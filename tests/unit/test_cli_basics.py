"""Start-up cost, help texts, exit codes for bugs and interrupts, redaction."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import AppContext, cli
from reconciler.redact import redact_uri, scrub
from tests.conftest import Repo

NO_MLFLOW = textwrap.dedent(
    """
    import sys
    from reconciler.cli import main
    sys.argv = ["reconciler", *sys.argv[1:]]
    try:
        main()
    except SystemExit as done:
        code = done.code
    loaded = sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow."))
    print("MLFLOW-MODULES:", len(loaded), file=sys.stderr)
    sys.exit(code)
    """
)


@pytest.mark.parametrize(
    "args", [["--help"], ["validate"], ["validate", "--help"], ["plan", "--help"]]
)
def test_help_and_validate_never_import_mlflow(repo: Repo, args: list[str]) -> None:
    repo.pin("production", "m", 1)
    done = subprocess.run(
        [sys.executable, "-c", NO_MLFLOW, *args],
        cwd=repo.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "MLFLOW-MODULES: 0" in done.stderr


def test_every_command_and_option_has_help() -> None:
    context = click.Context(cli)
    commands = dict(cli.commands)
    ci = cli.commands["ci"]
    assert isinstance(ci, click.Group)
    commands.update({f"ci {name}": command for name, command in ci.commands.items()})
    for name, command in commands.items():
        assert command.help, f"{name} has no help"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts} has no help"
    for param in cli.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{param.opts} has no help"
    assert set(cli.list_commands(context)) == {
        "validate",
        "plan",
        "apply",
        "history",
        "status",
        "promote",
        "unlock",
        "import",
        "verify",
        "init",
        "ci",
    }
    assert set(ci.list_commands(context)) == {
        "sticky-comment", "drift-issue", "promotion-order", "apply-in-order", "apply-outputs",
        "revert-pr", "action",
    }  # fmt: skip


def test_version(repo: Repo) -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("reconciler 0.")


def _broken_registry(_uri: str | None) -> object:
    raise ZeroDivisionError("password=hunter2 at http://bot:hunter2@host")


def test_a_bug_exits_3_with_one_line_and_no_secrets(repo: Repo) -> None:
    repo.pin("production", "m", 1)
    obj = AppContext(root=repo.root, registry_factory=_broken_registry)  # type: ignore[arg-type]
    result = CliRunner(env={"MLFLOW_TRACKING_PASSWORD": "hunter2"}).invoke(cli, ["plan"], obj=obj)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        "error: internal error (a bug, please report it): ZeroDivisionError: password=*** at "
        "http://***@host; rerun with --traceback for details"
    ]
    with_traceback = CliRunner(env={"MLFLOW_TRACKING_PASSWORD": "hunter2"}).invoke(
        cli,
        ["--traceback", "plan"],
        obj=AppContext(root=repo.root, registry_factory=_broken_registry),  # type: ignore[arg-type]
    )
    assert "Traceback (most recent call last)" in with_traceback.stderr
    assert "hunter2" not in with_traceback.stderr


def _interrupted(_uri: str | None) -> object:
    raise KeyboardInterrupt


def test_interrupt_exits_130(repo: Repo) -> None:
    repo.pin("production", "m", 1)
    obj = AppContext(root=repo.root, registry_factory=_interrupted)  # type: ignore[arg-type]
    result = CliRunner().invoke(cli, ["plan"], obj=obj)
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted\n"


def test_root_defaults_to_the_git_root(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.pin("production", "m", 1)
    monkeypatch.chdir(repo.root / "environments" / "production")
    result = CliRunner().invoke(cli, ["validate"], obj=AppContext())
    assert result.exit_code == 0, result.stderr
    outside = Path(repo.root).parent / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    result = CliRunner().invoke(cli, ["validate"], obj=AppContext())
    assert (
        result.stderr
        == "error: environments: folder not found\nerror: 1 problem(s) found; nothing was changed in the registry.\n"
    )


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://user:pw@mlflow.example.com/x", "https://***@mlflow.example.com/x"),
        ("http://token@host:5000", "http://***@host:5000"),
        ("databricks", "databricks"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("postgresql://u:p@db/mlflow", "postgresql://***@db/mlflow"),
        pytest.param("http://u:p@ss@host:5000/x", "http://***@host:5000/x", id="raw-at"),
        pytest.param("http://u:p@ss@host", "http://***@host", id="raw-at-no-path"),
        pytest.param(
            "https://host/x?token=t1&page_token=p&ACCESS_TOKEN=t2",
            "https://host/x?token=***&page_token=p&ACCESS_TOKEN=***",
            id="tokens",
        ),
        pytest.param(
            "https://acct.blob/c?sv=1&sig=abc%2Bd&Key=k;password=pw#frag",
            "https://acct.blob/c?sv=1&sig=***&Key=***;password=***#frag",
            id="sas-and-key",
        ),
        pytest.param(
            "http://h/?client_secret=s1&MySecretThing=s2&x=1",
            "http://h/?client_secret=***&MySecretThing=***&x=1",
            id="star-secret-star",
        ),
        pytest.param(
            "cannot reach http://u:p@h@host/?token=t: timed out",
            "cannot reach http://***@host/?token=***: timed out",
            id="in-a-sentence",
        ),
        pytest.param(
            "[v2](https://host/#/models/m@champion) and a@b.c",
            "[v2](https://host/#/models/m@champion) and a@b.c",
            id="not-a-uri",
        ),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_scrub_removes_known_secrets() -> None:
    assert scrub("token abc123 and abc1234", ["abc123", "abc1234"]) == "token *** and ***"
    assert scrub("nothing here", [""]) == "nothing here"


def test_scrub_removes_a_password_with_an_at_sign_whole() -> None:
    assert scrub("http://bot:p@ss@host and p@ss", ["p@ss"]) == "http://***@host and ***"
