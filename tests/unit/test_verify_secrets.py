"""Secrets in `verify`'s endpoints (issue 15 §4): a `${VAR}` read from a file ends in a newline,
a header written by hand may hold one, a backend may echo the token. None of that crashes
`verify` or `apply --verify`, and no part of a value read for a `${VAR}` appears in any output:
stdout, stderr, JSON, `--debug`, internal errors with `--traceback`. Real HTTP servers on
127.0.0.1, the CLI through CliRunner and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli
from tests.unit.test_verify import Answer, Serving, settings

# Secrets made of characters that never occur in a report by chance, so that any five of them in
# a row showing anywhere means part of a secret leaked.
KEY = "Zq8xK2vW9pL4mN7"
TOKEN = "Hj3kQ9wXy2Bv6Tz"


@pytest.fixture
def serving() -> Iterator[Serving]:
    server = Serving()
    yield server
    server.close()


def leaked(output: str, *secrets: str) -> list[str]:
    """Every 5-character piece of the secrets that appears in `output` (none may)."""
    pieces = {s.strip()[i : i + 5] for s in secrets for i in range(len(s.strip()) - 4)}
    return sorted(piece for piece in pieces if piece in output)


def every_output(run: RunCli, *args: str) -> list[tuple[int, str]]:
    """(exit code, stdout + stderr) of `args` as text, JSON, with --debug and --traceback."""
    found = []
    for extra in ((), ("--format", "json")):
        for flags in ((), ("--debug",), ("--traceback",)):
            result = run(*flags, *args, *extra)
            found.append((result.exit_code, result.stdout + result.stderr))
    return found


@pytest.mark.parametrize(
    ("where", "variable", "value"),
    [
        pytest.param("header", "TOKEN", f"{TOKEN}\n", id="header-trailing-newline"),
        pytest.param("header", "TOKEN", f"{TOKEN}\r\n", id="header-crlf"),
        pytest.param("header", "TOKEN", f"{TOKEN}\nX-Injected: 1", id="header-injection"),
        pytest.param("url", "API_KEY", f"{KEY}\n", id="query-trailing-newline"),
        pytest.param("url", "API_KEY", f"{KEY[:7]} {KEY[7:]}", id="query-space"),
    ],
)
def test_a_variable_no_request_can_carry_is_refused_naming_it_never_its_value(
    repo: Repo,
    run: RunCli,
    serving: Serving,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv("API_KEY", KEY if variable != "API_KEY" else value)
    monkeypatch.setenv("TOKEN", TOKEN if variable != "TOKEN" else value)
    settings(
        repo,
        "production",
        f"{serving.base}/health?key=${{API_KEY}}",
        "headers:",
        "  Authorization: Bearer ${TOKEN}",
    )
    repo.pin("production", "churn", 3)
    serving.serve(f"/health?key={KEY}", 3)
    for code, output in every_output(run, "verify", "--timeout", "0"):
        assert code == 1, output
        assert f"the environment variable {variable}" in output, output
        assert ("headers.Authorization" if where == "header" else "url") in output
        assert "internal error" not in output
        assert not leaked(output, value), output
        assert not leaked(output, KEY, TOKEN)
    assert serving.seen == []  # refused before the first poll


def test_a_secret_ending_in_a_newline_never_shows_in_a_real_process(
    repo: Repo, serving: Serving
) -> None:
    settings(
        repo,
        "production",
        f"{serving.base}/health?key=${{API_KEY}}",
        "headers:",
        "  Authorization: Bearer ${TOKEN}",
    )
    repo.pin("production", "churn", 3)
    env = {**os.environ, "API_KEY": f"{KEY}\n", "TOKEN": f"{TOKEN}\n"}
    for args in (["verify", "--timeout", "0"], ["--traceback", "verify", "--timeout", "0"]):
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            cwd=repo.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert "the environment variable API_KEY" in output
        assert not leaked(output, KEY, TOKEN), output
    assert serving.seen == []


def test_apply_verify_with_a_secret_ending_in_a_newline_fails_cleanly(
    repo: Repo,
    run: RunCli,
    fake: FakeRegistry,
    serving: Serving,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOKEN", f"{TOKEN}\n")
    fake.create_version("churn", stage=PRODUCTION)
    fake.create_version("churn")
    settings(
        repo,
        "production",
        f"{serving.base}/churn",
        "timeout: 1s",
        "headers:",
        "  Authorization: Bearer ${TOKEN}",
    )
    repo.pin("production", "churn", 2)
    result = run("--traceback", "apply", "--verify", "--format", "json")
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "the environment variable TOKEN" in result.stderr
    assert "internal error" not in output
    assert not leaked(output, TOKEN), output
    assert fake.read(["churn"]).models["churn"].in_stage(PRODUCTION) == ["2"]  # the change stands
    assert serving.seen == []


@pytest.mark.parametrize(
    ("header_line", "shown"),
    [
        pytest.param('    X-Token: "abc\\ndef"', "a newline", id="newline"),
        pytest.param('    X-Token: "abc\\rdef"', "a carriage return", id="carriage-return"),
        pytest.param('    X-Token: "abc\\x01def"', "a control character", id="control"),
    ],
)
def test_a_literal_header_value_with_a_control_character_fails_validate_located(
    repo: Repo, run: RunCli, fake: FakeRegistry, header_line: str, shown: str
) -> None:
    repo.write(
        "environments/production.yaml",
        "stage: Production\nserving:\n  url: http://127.0.0.1:9/health\n  headers:\n"
        f"{header_line}\n",
    )
    repo.pin("production", "churn", 1)
    for command in ("validate", "verify", "apply"):
        result = run(command)
        assert result.exit_code == 1, result.output
        first = result.stderr.splitlines()[0]
        assert first.startswith(
            "error: environments/production.yaml:5: serving.headers.X-Token: holds "
        ), first
        assert shown in first
        assert "abc" not in result.stderr  # the value may be a credential: never quoted
    assert fake.read(["churn"]).models == {}


def test_a_literal_header_in_a_pin_is_located_in_the_pin(repo: Repo, run: RunCli) -> None:
    repo.write(
        "environments/production/churn.yaml",
        "model: churn\nversion: 1\nserving:\n  url: http://127.0.0.1:9/health\n  headers:\n"
        '    X-Token: "Bearer x\\n"\n',
    )
    result = run("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: environments/production/churn.yaml:6: serving.headers.X-Token: holds a newline"
    ), result.stderr


def test_a_backend_echoing_the_token_never_shows_any_of_it(
    repo: Repo, run: RunCli, serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the backend answers is shown when it is not a version: quoted as JSON and cut to 40
    characters. Neither the JSON escaping nor the cut may let part of the token through."""
    token = f'{TOKEN}"\\{KEY}{TOKEN}{KEY}'  # a quote and a backslash: JSON escapes them
    monkeypatch.setenv("TOKEN", token)
    settings(repo, "production", f"{serving.base}/health", "headers:", "  Authorization: ${TOKEN}")
    repo.pin("production", "churn", 3)
    serving.answers["/health"] = Answer(
        body=json.dumps({"version": token, "reload_error": f"cannot load {token}"}).encode()
    )
    for code, output in every_output(run, "verify", "--timeout", "0"):
        assert code == 1
        assert "version is " in output
        assert not leaked(output, KEY, TOKEN), output
    assert serving.seen[0][1]["Authorization"] == token


def test_an_internal_error_never_shows_a_secret_even_with_traceback(
    repo: Repo, run: RunCli, serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while judging an answer (here: made to happen) becomes exit 3 with the usual line;
    the values read for `${VAR}` are registered with the redaction, so neither the message nor
    the traceback shows them, in any spelling Python gives them (repr escapes)."""
    from reconciler.serving import verify as verify_module

    def broken(status: int, body: bytes, field: str) -> object:
        raise RuntimeError(f"cannot judge {body!r} for {KEY!r} and {TOKEN + chr(10)!r}")

    monkeypatch.setattr(verify_module, "judge", broken)
    monkeypatch.setenv("API_KEY", KEY)
    monkeypatch.setenv("TOKEN", f"{TOKEN}\t")  # a tab is allowed in a header value
    settings(
        repo,
        "production",
        f"{serving.base}/health?team=${{API_KEY}}",
        "headers:",
        "  Authorization: Bearer ${TOKEN}",
    )
    repo.pin("production", "churn", 3)
    serving.answers[f"/health?team={KEY}"] = Answer(body=f'{{"echo": "{KEY} {TOKEN}"}}'.encode())
    for code, output in every_output(run, "verify", "--timeout", "0"):
        assert code == 3, output
        assert "internal error (a bug, please report it): RuntimeError: cannot judge" in output
        assert not leaked(output, KEY, TOKEN), output
    assert serving.seen  # it did poll


def test_a_backend_echoing_a_query_value_decoded_never_shows_it(
    repo: Repo, run: RunCli, serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `${VAR}` in the query goes out URL-quoted as written (`%2F`); a backend that echoes its
    request decoded sends `/` back (hostile review): that spelling is the secret too."""
    secret = f"{TOKEN}%2F{KEY}"
    decoded = f"{TOKEN}/{KEY}"
    monkeypatch.setenv("QV", secret)
    settings(repo, "production", f"{serving.base}/health?x=${{QV}}")
    repo.pin("production", "churn", 3)
    assert run("verify", "--timeout", "0").exit_code == 1
    [(sent, _headers)] = serving.seen
    echoed = urllib.parse.unquote(sent)  # what the backend read
    assert decoded in echoed
    serving.answers[sent] = Answer(
        status=503, body=json.dumps({"reload_error": f"bad request {echoed}"}).encode()
    )
    for code, output in every_output(run, "verify", "--timeout", "0"):
        assert code == 1
        assert decoded not in output, output
        assert not leaked(output, KEY, TOKEN), output


def test_a_variable_problem_is_located_for_machines_too(
    repo: Repo, run: RunCli, serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    """file:line and the field that uses the variable, in the JSON error document as in the
    error line (hostile review: the line and the `problems` entry were missing)."""
    monkeypatch.setenv("TOKEN", f"{TOKEN}\n")
    settings(repo, "production", f"{serving.base}/health", "headers:", "  Authorization: ${TOKEN}")
    repo.pin("production", "churn", 3)
    result = run("verify", "--format", "json")
    assert result.exit_code == 1
    [problem] = json.loads(result.stdout)["error"]["problems"]
    assert (problem["file"], problem["line"], problem["field"]) == (
        "environments/production.yaml",
        5,
        "serving.headers.Authorization",
    )
    assert problem["message"].startswith("the environment variable TOKEN holds a newline")
    assert TOKEN not in result.output
    assert serving.seen == []
