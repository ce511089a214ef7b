"""`reconciler verify` and `apply --verify` against real HTTP servers on 127.0.0.1: what each answer
means (match, wrong version, HTTP status, not JSON, field missing, unreachable), waiting for
serving to catch up, and secrets in headers and URLs never shown."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli
from tests.support.sns import sns_inbox
from tests.unit.test_cli_basics import NO_MLFLOW
from tests.unit.test_notify import Hook

TOKEN = "tok-3f9a1c7e"  # a secret: must never appear in any output


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"version": "1"}'
    headers: dict[str, str] = field(default_factory=dict)


class Serving:
    """A serving stand-in: `answers[path]` says what GET `path` returns; a callable is asked anew
    on every request (serving that catches up). Every request's headers are kept."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer | Callable[[], Answer]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        serving = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                serving.seen.append((self.path, dict(self.headers)))
                answer = serving.answers.get(self.path, Answer(404, b"{}"))
                if callable(answer):
                    answer = answer()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, path: str, version: object, field: str = "version") -> None:
        document: object = version
        for part in reversed(field.split(".")):
            document = {part: document}
        self.answers[path] = Answer(body=json.dumps(document).encode())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serving() -> Iterator[Serving]:
    server = Serving()
    yield server
    server.close()


def settings(repo: Repo, env: str, url: str, *extra: str, stage: str = PRODUCTION) -> None:
    lines = [f"stage: {stage}", "serving:", f"  url: {url}", *(f"  {line}" for line in extra)]
    repo.write(f"environments/{env}.yaml", "\n".join(lines) + "\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def test_verify_passes_when_every_endpoint_serves_its_pin(
    repo: Repo, run: RunCli, serving: Serving
) -> None:
    settings(repo, "production", f"{serving.base}/{{model}}/health", "version_field: model.version")
    repo.pin("production", "churn", 7)
    repo.pin("production", "fraud", 3)
    serving.serve("/churn/health", 7, "model.version")  # a number
    serving.serve("/fraud/health", "3", "model.version")  # a string: same version
    result = run("verify")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"ok    churn in production: serves v7 ({serving.base}/churn/health")
    assert lines[1].startswith(f"ok    fraud in production: serves v3 ({serving.base}/fraud/health")
    assert lines[2] == "all 2 endpoint(s) serve their pinned version"
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(Answer(body=b'{"version": 2}'), "serves v2", id="wrong-version"),
        pytest.param(Answer(503, b'{"version": 3}'), "HTTP 503", id="http-status"),
        pytest.param(Answer(body=b"<html>ok</html>"), "the answer is not JSON", id="not-json"),
        pytest.param(
            Answer(body=b'{"status": "ok"}'), "the answer has no field version", id="no-field"
        ),
        pytest.param(
            Answer(body=b'{"version": "v3"}'), 'version is "v3", not a version', id="not-a-version"
        ),
        pytest.param(
            Answer(body=b'{"version": true}'), "version is true, not a version", id="boolean"
        ),
        pytest.param(
            Answer(body=b'{"version": " 3"}'), 'version is " 3", not a version', id="padded"
        ),
        pytest.param(
            Answer(302, b"", {"Location": "http://127.0.0.1:9/"}),
            "HTTP 302: a redirect, not followed",
            id="redirect",
        ),
        pytest.param(
            Answer(body=b'{"version": 2, "reload_error": "OSError: no models:/churn/3"}'),
            "serves v2; backend reload_error: OSError: no models:/churn/3",
            id="reload-error",
        ),
        pytest.param(
            Answer(503, b'{"version": null, "reload_error": "churn/Production names no version"}'),
            "HTTP 503; backend reload_error: churn/Production names no version",
            id="reload-error-503",
        ),
    ],
)
def test_each_kind_of_wrong_answer_fails_with_its_reason(
    repo: Repo, run: RunCli, serving: Serving, answer: Answer, error: str
) -> None:
    settings(repo, "production", f"{serving.base}/health")
    repo.pin("production", "churn", 3)
    serving.answers["/health"] = answer
    result = run("verify", "--timeout", "0")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"FAIL  churn in production: pinned v3, {error} ({serving.base}/health, gave up after "
        f"{result.stdout.split('gave up after ')[1].split('s,')[0]}s, 1 poll(s))",
        "1 of 1 endpoint(s) do not serve their pinned version",
    ]
    record = json.loads(run("verify", "--timeout", "0", "--format", "json").stdout)
    assert record["ok"] is False
    (endpoint,) = record["endpoints"]
    assert endpoint["error"] == error
    assert endpoint["expected_version"] == "3"
    assert endpoint["served_version"] == ("2" if error.startswith("serves") else None)
    assert endpoint["reload_error"] == (
        error.split("reload_error: ")[1] if "reload_" in error else None
    )


def test_an_unreachable_endpoint_fails_naming_it(repo: Repo, run: RunCli) -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    settings(repo, "production", url)
    repo.pin("production", "churn", 3)
    result = run("verify", "--timeout", "0", "--format", "json")
    assert result.exit_code == 1
    (endpoint,) = json.loads(result.stdout)["endpoints"]
    assert endpoint["url"] == url
    assert endpoint["error"].startswith("unreachable: ")
    assert "refused" in endpoint["error"].lower()


def test_verify_waits_until_serving_catches_up(repo: Repo, run: RunCli, serving: Serving) -> None:
    settings(repo, "production", f"{serving.base}/health", "interval: 1s", "timeout: 1m")
    repo.pin("production", "churn", 2)
    answers = iter([Answer(body=b'{"version": 1}'), Answer(503, b"")])

    def catching_up() -> Answer:
        return next(answers, Answer(body=b'{"version": 2}'))

    serving.answers["/health"] = catching_up
    result = run("verify", "--format", "json")
    assert result.exit_code == 0, result.output
    (endpoint,) = json.loads(result.stdout)["endpoints"]
    assert endpoint["ok"] is True
    assert endpoint["polls"] == 3
    assert endpoint["served_version"] == "2"


def test_endpoints_are_polled_concurrently(repo: Repo, run: RunCli, serving: Serving) -> None:
    """Two endpoints that each answer only once the other has been asked: one at a time, the
    first would never match."""
    settings(repo, "production", f"{serving.base}/{{model}}", "interval: 1s", "timeout: 1m")
    repo.pin("production", "a", 1)
    repo.pin("production", "b", 1)
    asked: set[str] = set()

    def answer_for(model: str, other: str) -> Callable[[], Answer]:
        def answer() -> Answer:
            asked.add(model)
            ready = other in asked
            return Answer(body=json.dumps({"version": 1 if ready else 99}).encode())

        return answer

    serving.answers["/a"] = answer_for("a", "b")
    serving.answers["/b"] = answer_for("b", "a")
    result = run("verify")
    assert result.exit_code == 0, result.output


def test_secrets_in_headers_and_urls_are_sent_but_never_shown(
    repo: Repo, run: RunCli, serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVING_TOKEN", TOKEN)
    monkeypatch.setenv("SERVING_KEY", "key-77e1d0")
    host = serving.base.removeprefix("http://")
    settings(
        repo,
        "production",
        f"http://svc:pw-9c2b@{host}/health?team=${{SERVING_KEY}}",
        "headers:",
        "  Authorization: Bearer ${SERVING_TOKEN}",
    )
    repo.pin("production", "churn", 3)
    # The secret in an error the server sends back is never shown either.
    serving.answers["/health?team=key-77e1d0"] = Answer(401, f'{{"error": "{TOKEN}"}}'.encode())
    outputs = []
    for args in ((), ("--format", "json")):
        for debug in ((), ("--debug",)):
            result = run(*debug, "verify", "--timeout", "0", *args)
            assert result.exit_code == 1
            outputs.append(result.output + result.stderr)
    assert serving.seen[0][0] == "/health?team=key-77e1d0"
    assert serving.seen[0][1]["Authorization"] == f"Bearer {TOKEN}"
    assert serving.seen[0][1]["Host"] == host  # user:password@ is not part of the host
    assert "HTTP 401" in outputs[0]
    assert "http://***@" in outputs[0]
    assert "?team=${SERVING_KEY}" in outputs[0]
    for output in outputs:
        assert TOKEN not in output
        assert "key-77e1d0" not in output
        assert "pw-9c2b" not in output


def test_user_and_password_in_the_url_become_basic_auth(
    repo: Repo, run: RunCli, serving: Serving
) -> None:
    host = serving.base.removeprefix("http://")
    settings(repo, "production", f"http://svc:pw-9c2b@{host}/health")
    repo.pin("production", "churn", 3)
    serving.serve("/health", 3)
    result = run("verify")
    assert result.exit_code == 0, result.output
    assert serving.seen[0][1]["Authorization"] == "Basic c3ZjOnB3LTljMmI="  # svc:pw-9c2b
    assert "pw-9c2b" not in result.output
    assert "http://***@" in result.output


def test_an_unset_variable_is_named_and_nothing_is_polled(
    repo: Repo, run: RunCli, serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVING_TOKEN", raising=False)
    settings(
        repo, "production", f"{serving.base}/health", "headers:", "  X-Token: ${SERVING_TOKEN}"
    )
    repo.pin("production", "churn", 3)
    result = run("verify")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: environments/production.yaml:5: serving.headers.X-Token: needs the environment "
        "variable SERVING_TOKEN, which is not set\n"
        "error: 1 problem(s) found; no endpoint was polled.\n"
    )
    assert serving.seen == []
    monkeypatch.setenv("SERVING_TOKEN", "")
    assert "SERVING_TOKEN, which is not set" in run("verify").stderr


def test_a_pin_serving_elsewhere_overrides_its_environment(
    repo: Repo, run: RunCli, serving: Serving
) -> None:
    settings(repo, "production", f"{serving.base}/shared/{{model}}")
    repo.pin("production", "churn", 4)
    repo.write(
        "environments/production/fraud.yaml",
        f"model: fraud\nversion: 5\nserving:\n  url: {serving.base}/own/{{environment}}\n"
        "  version_field: info.v\n",
    )
    serving.serve("/shared/churn", 4)
    serving.serve("/own/production", 5, "info.v")
    result = run("verify", "--format", "json")
    assert result.exit_code == 0, result.output
    urls = [e["url"] for e in json.loads(result.stdout)["endpoints"]]
    assert urls == [f"{serving.base}/shared/churn", f"{serving.base}/own/production"]


def test_filters_and_nothing_to_verify(repo: Repo, run: RunCli, serving: Serving) -> None:
    settings(repo, "production", f"{serving.base}/{{model}}")
    repo.pin("production", "churn", 4)
    repo.pin("production", "fraud", 5)
    repo.pin("staging", "churn", 6)  # staging has no serving:
    serving.serve("/churn", 4)
    result = run("verify", "--model", "churn", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [e["model"] for e in json.loads(result.stdout)["endpoints"]] == ["churn"]
    result = run("verify", "--env", "staging")
    assert result.exit_code == 0
    assert result.stdout == (
        "nothing to verify: no pin in scope has serving: (in its pin or environment)\n"
    )
    result = run("verify", "--env", "nowhere")
    assert result.exit_code != 0
    assert "no such environment" in result.stderr


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        pytest.param(
            ["url: http://x/{name}/health"],
            "environments/production.yaml:3: serving.url: unknown placeholder {name} "
            "(allowed: {model}, {environment})",
            id="placeholder",
        ),
        pytest.param(
            ["url: http://x/health", "headers:", "  X-Token: ${1TOKEN}"],
            "environments/production.yaml:5: serving.headers.X-Token: ${1TOKEN} is not an "
            "environment variable name (letters, digits and '_', not starting with a digit)",
            id="variable",
        ),
        pytest.param(
            ["url: http://x/health", "timeout: 5x"],
            "environments/production.yaml:4: serving.timeout: '5x' is not valid: How long to "
            "wait for serving to catch up: a number with s, m or h (default 5m).",
            id="duration",
        ),
        pytest.param(
            ["url: ftp://x/health"],
            "environments/production.yaml:3: serving.url: 'ftp://x/health' is not valid: http(s) "
            "URL answering JSON",
            id="scheme",
        ),
        pytest.param(
            ["version_field: v"],
            "environments/production.yaml:2: serving.url: required key is missing",
            id="no-url",
        ),
        pytest.param(
            ["url: http://x/health", "verison_field: v"],
            "environments/production.yaml:4: serving.verison_field: unknown key (allowed: "
            "headers, interval, timeout, url, version_field)",
            id="typo",
        ),
    ],
)
def test_bad_serving_settings_are_located(
    repo: Repo, run: RunCli, fake: FakeRegistry, lines: list[str], problem: str
) -> None:
    repo.write(
        "environments/production.yaml",
        "stage: Production\nserving:\n" + "".join(f"  {line}\n" for line in lines),
    )
    repo.pin("production", "churn", 1)
    for command in ("validate", "verify", "apply"):
        result = run(command)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: {problem}"), result.stderr
    assert fake.read(["churn"]).models == {}


@pytest.fixture
def promotion(repo: Repo, fake: FakeRegistry, serving: Serving) -> None:
    fake.create_version("churn", stage=PRODUCTION)
    fake.create_version("churn")
    fake.create_version("fraud", stage=PRODUCTION)
    settings(repo, "production", f"{serving.base}/{{model}}", "interval: 1s", "timeout: 1s")
    repo.pin("production", "churn", 2)
    repo.pin("production", "fraud", 1)  # in sync: not verified by apply --verify
    serving.answers["/fraud"] = Answer(500, b"")


def test_apply_verify_checks_the_pins_it_changed(
    run: RunCli, promotion: None, serving: Serving, fake: FakeRegistry
) -> None:
    serving.serve("/churn", 2)
    result = run("apply", "--verify")
    assert result.exit_code == 0, result.output
    assert "ok    churn in production: serves v2" in result.stdout
    assert "fraud" not in result.stdout.split("ok    churn")[1]
    assert [path for path, _ in serving.seen] == ["/churn"]


def test_apply_verify_fails_when_serving_does_not_follow_and_the_changes_stand(
    run: RunCli, promotion: None, serving: Serving, fake: FakeRegistry
) -> None:
    serving.serve("/churn", 1)
    result = run("apply", "--verify", "--format", "json")
    assert result.exit_code == 1
    records = json.loads(result.stdout)  # stdout stays the apply's one JSON document
    assert any(r["model_name"] == "churn" and r["promoted"] for r in records), records
    assert fake.read(["churn"]).models["churn"].in_stage(PRODUCTION) == ["2"]
    assert "FAIL  churn in production: pinned v2, serves v1" in result.stderr
    assert result.stderr.endswith(
        "error: serving does not follow the pins; the registry changes stand (see above)\n"
    )


def test_apply_verify_shows_the_backends_reload_error(
    run: RunCli, promotion: None, serving: Serving
) -> None:
    """The reference backend says in `reload_error` why it does not serve what the registry
    names; a failing verification passes it on, made one line, cut short, in text and JSON."""
    why = "MlflowException: no MLmodel\nat models:/churn/2 " + "x" * 400
    serving.answers["/churn"] = Answer(
        body=json.dumps({"version": "1", "reload_error": why}).encode()
    )
    result = run("apply", "--verify")
    assert result.exit_code == 1
    line = next(x for x in result.stdout.splitlines() if x.startswith("FAIL  churn"))
    assert line.startswith(
        "FAIL  churn in production: pinned v2, serves v1; backend reload_error: MlflowException: "
        "no MLmodel\\nat models:/churn/2 xxx"
    ), line
    assert "x" * 300 not in line
    assert line.split(" (http")[0].endswith("…")
    result = run("verify", "--model", "churn", "--timeout", "0", "--format", "json")
    (endpoint,) = json.loads(result.stdout)["endpoints"]
    assert endpoint["reload_error"].startswith("MlflowException: no MLmodel\\nat models:/churn/2")
    assert endpoint["error"] == f"serves v1; backend reload_error: {endpoint['reload_error']}"
    # Serving its pin, the backend's complaint is no failure.
    serving.answers["/churn"] = Answer(
        body=json.dumps({"version": 2, "reload_error": why}).encode()
    )
    (endpoint,) = json.loads(run("verify", "--format", "json").stdout)["endpoints"][:1]
    assert (endpoint["ok"], endpoint["reload_error"]) == (True, None)


def test_apply_without_verify_never_polls(run: RunCli, promotion: None, serving: Serving) -> None:
    assert run("apply").exit_code == 0
    assert serving.seen == []


def test_a_failed_verification_is_notified_with_the_same_fields(
    run: RunCli,
    promotion: None,
    serving: Serving,
    hook: Hook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", hook.url)
    serving.serve("/churn", 1)
    result = run("apply", "--verify")
    assert result.exit_code == 1
    promoted, failed = (body["text"] for body in hook.bodies)
    assert promoted.startswith("*Model Promoted: churn*")
    head, waited = failed.rsplit("\nWaited: ", 1)
    assert head == (
        "*Serving Verification Failed: churn*\n"
        "Serving Verification Failed\n\n"
        "Model: churn\n"
        "Environment: production\n"
        "Pinned Version: 2\n"
        "Served Version: 1\n"
        "Error: serves v1\n"
        f"Endpoint: {serving.base}/churn"
    )
    assert waited.endswith("s")
    assert "note: notified (webhook, churn in production)" in result.stderr
    # `verify` alone notifies too; a passing one sends nothing.
    sent = len(hook.bodies)
    assert run("verify", "--model", "churn", "--timeout", "0").exit_code == 1
    assert len(hook.bodies) == sent + 1
    serving.serve("/churn", 2)
    assert run("verify", "--model", "churn").exit_code == 0
    assert len(hook.bodies) == sent + 1


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def test_verify_is_offline_and_never_imports_mlflow(repo: Repo, serving: Serving) -> None:
    settings(repo, "production", f"{serving.base}/health")
    repo.pin("production", "churn", 3)
    serving.serve("/health", 3)
    done = subprocess.run(
        [sys.executable, "-c", NO_MLFLOW, "verify"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "MLFLOW-MODULES: 0" in done.stderr


def test_a_silent_endpoint_is_reported_not_waited_on_forever(repo: Repo, run: RunCli) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings(repo, "production", f"http://127.0.0.1:{silent.getsockname()[1]}/health")
        repo.pin("production", "churn", 3)
        result = run("verify", "--timeout", "0", "--format", "json")
    assert result.exit_code == 1
    (endpoint,) = json.loads(result.stdout)["endpoints"]
    assert endpoint["error"] in ("unreachable: no answer within 0.5s", "unreachable: timed out")


def test_names_with_spaces_and_unicode_stay_one_path_segment(
    repo: Repo, run: RunCli, serving: Serving
) -> None:
    settings(repo, "production", f"{serving.base}/{{model}}/health")
    repo.pin("production", "churn model ü#1", 3)
    serving.serve("/churn%20model%20%C3%BC%231/health", 3)
    result = run("verify")
    assert result.exit_code == 0, result.output
    assert "ok    churn model ü#1 in production: serves v3" in result.stdout


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_every_poll(repo: Repo, serving: Serving) -> None:
    settings(repo, "production", f"{serving.base}/{{model}}", "interval: 1s", "timeout: 1h")
    repo.pin("production", "a", 2)
    repo.pin("production", "b", 2)
    serving.serve("/a", 1)
    serving.serve("/b", 1)
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "verify"],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started in the background by a non-interactive shell ignores SIGINT, and
        # children inherit that: give this one the default, as a terminal's process has.
        preexec_fn=_default_sigint,
    )
    try:
        while {path for path, _ in serving.seen} != {"/a", "/b"}:
            assert process.poll() is None, process.communicate()
            threading.Event().wait(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    # The report, with what each endpoint answered until then (tests/unit/test_verify_timeout.py
    # has twenty endpoints of every kind, SIGTERM and JSON).
    lines = out.splitlines()
    assert [line.split(" (")[0] for line in lines[:2]] == [
        "FAIL  a in production: pinned v2, serves v1",
        "FAIL  b in production: pinned v2, serves v1",
    ]
    assert all(", interrupted after " in line for line in lines[:2])
    assert err.endswith(
        "error: verify interrupted by SIGINT: the report shows what each endpoint answered until "
        "then\n"
    )


def test_a_bad_serving_block_in_a_pin_is_located_in_the_pin(repo: Repo, run: RunCli) -> None:
    repo.write(
        "environments/production/churn.yaml",
        "model: churn\nversion: 1\nserving:\n  url: http://x/{nope}\n  interval: 0s\n",
    )
    result = run("validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "error: environments/production/churn.yaml:5: serving.interval: '0s' is not valid: "
        "Time between polls: a number with s, m or h (default 5s)."
    )
    repo.write(
        "environments/production/churn.yaml",
        "model: churn\nversion: 1\nserving:\n  url: http://x/{nope}\n",
    )
    assert run("validate").stderr.splitlines()[0] == (
        "error: environments/production/churn.yaml:4: serving.url: unknown placeholder {nope} "
        "(allowed: {model}, {environment})"
    )


def test_a_failed_verification_reaches_sns_too(
    repo: Repo, run: RunCli, serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings(repo, "production", f"{serving.base}/health")
    repo.pin("production", "churn", 3)
    serving.answers["/health"] = Answer(503, b"")
    with sns_inbox(monkeypatch, "model-serving") as first_message:
        result = run("verify", "--timeout", "0")
        assert result.exit_code == 1
        assert result.stderr == "note: notified (sns, churn in production)\n"
        envelope = first_message()
    assert envelope["Subject"] == "Serving Verification Failed: churn"
    lines = envelope["Message"].splitlines()
    assert lines[:8] == [
        "Serving Verification Failed",
        "",
        "Model: churn",
        "Environment: production",
        "Pinned Version: 3",
        "Served Version: unknown",
        "Error: HTTP 503",
        f"Endpoint: {serving.base}/health",
    ]
