"""Notifications after apply: the seed's message to a webhook (a local HTTP server here) and to
SNS (moto); a failing channel never fails the apply and never shows its URL."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli
from tests.support.sns import sns_inbox


class Hook:
    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, str]] = []
        self.authorizations: list[str | None] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.authorizations.append(self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/s3cr3t"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


@pytest.fixture
def promotion(repo: Repo, fake: FakeRegistry) -> None:
    fake.create_version("churn-model", stage=PRODUCTION)
    fake.create_version("churn-model")
    repo.write(
        "environments/production/churn-model.yaml",
        "model: churn-model\nversion: 2\nconfidence: 0.87\n",
    )


SEED_BODY = (
    "Model Promotion Completed\n\n"
    "Model: churn-model\n"
    "New Production Version: 2\n"
    "Previous Version: 1\n"
    "Comparison Confidence: 0.87\n"
    "Environment: production"
)


def test_webhook_gets_the_seed_message(
    run: RunCli, promotion: None, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", hook.url)
    result = run("apply")
    assert result.exit_code == 0
    assert hook.bodies == [{"text": f"*Model Promoted: churn-model*\n{SEED_BODY}"}]
    assert result.stderr == "note: notified (webhook, churn-model in production)\n"
    # In sync: nothing changed, nothing sent.
    assert run("apply").exit_code == 0
    assert len(hook.bodies) == 1


def test_a_webhook_url_with_credentials_sends_them_as_basic_auth(
    run: RunCli, promotion: None, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`https://user:password@host/...`: urllib would look the whole `user:password@host` up as
    the host name (hostile review: every notification failed); the credentials go as Basic
    auth, as a `serving:` URL's do, and are never printed."""
    with_credentials = hook.url.replace("http://", "http://hook-user:p%40ss:word@", 1)
    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", with_credentials)
    result = run("apply")
    assert result.exit_code == 0
    assert result.stderr == "note: notified (webhook, churn-model in production)\n"
    token = base64.b64encode(b"hook-user:p@ss:word").decode()
    assert hook.authorizations == [f"Basic {token}"]
    assert "p@ss" not in result.output


def test_rollback_message(
    repo: Repo, run: RunCli, fake: FakeRegistry, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.create_version("m")
    fake.create_version("m", stage=PRODUCTION)
    repo.pin("production", "m", 1)
    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", hook.url)
    assert run("apply").exit_code == 0
    text = hook.bodies[0]["text"]
    assert text.startswith("*Model Rolled Back: m*\nModel Rollback Completed\n")
    assert "Previous Version: 2" in text
    assert "Comparison Confidence: N/A" in text


def test_a_failing_webhook_never_fails_the_apply_nor_shows_its_url(
    run: RunCli, promotion: None, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = Hook(status=500)
    try:
        monkeypatch.setenv("RECONCILER_WEBHOOK_URL", failing.url)
        result = run("apply")
    finally:
        failing.close()
    assert result.exit_code == 0
    assert (
        result.stderr
        == "note: notification failed (webhook, churn-model in production): HTTP 500\n"
    )
    assert fake.read(["churn-model"]).models["churn-model"].in_stage(PRODUCTION) == ["2"]


def test_an_unreachable_webhook_is_reported_without_the_url(
    run: RunCli, promotion: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", "http://127.0.0.1:9/services/T0/B0/s3cr3t")
    result = run("apply")
    assert result.exit_code == 0
    assert result.stderr.startswith(
        "note: notification failed (webhook, churn-model in production): cannot reach the webhook"
    )
    assert "s3cr3t" not in result.stderr


def test_sns(run: RunCli, promotion: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with sns_inbox(monkeypatch, "model-promotions") as first_message:
        result = run("apply")
        assert result.exit_code == 0
        assert result.stderr == "note: notified (sns, churn-model in production)\n"
        envelope = first_message()
        assert envelope["Subject"] == "Model Promoted: churn-model"
        assert envelope["Message"] == SEED_BODY


def test_webhook_text_escapes_what_slack_reads_as_markup(
    repo: Repo, run: RunCli, fake: FakeRegistry, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model named like a Slack mention is shown, not obeyed (issue 15 §7)."""
    name = "<!channel> & <!here|y>"
    fake.create_version(name, stage=PRODUCTION)
    fake.create_version(name)
    repo.write(f"environments/production/{name}.yaml", f"model: '{name}'\nversion: 2\n")
    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", hook.url)
    assert run("apply").exit_code == 0
    shown = "&lt;!channel&gt; &amp; &lt;!here|y&gt;"
    assert hook.bodies[0]["text"].startswith(f"*Model Promoted: {shown}*\n")
    assert f"Model: {shown}\n" in hook.bodies[0]["text"]
