"""Messages after each applied promotion or rollback, in the promote-model seed's format, and
after each failed serving verification, to a Slack-compatible webhook and/or AWS SNS. A failed
notification never fails the apply.

Configured by environment variables:
    RECONCILER_WEBHOOK_URL     POST {"text": ...} (Slack incoming webhooks and compatibles)
    RECONCILER_SNS_TOPIC_ARN   publish to this topic (needs the `sns` extra: boto3)
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.apply.executor import ApplyReport
from reconciler.pins.endpoints import userinfo_as_basic_auth
from reconciler.pins.values import Pin
from reconciler.records import audit
from reconciler.redact import scrub
from reconciler.serving.verify import Outcome

WEBHOOK_VARIABLE = "RECONCILER_WEBHOOK_URL"
SNS_VARIABLE = "RECONCILER_SNS_TOPIC_ARN"
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Message:
    model: str
    environment: str
    subject: str
    body: str


def messages(report: ApplyReport) -> list[Message]:
    """One message per pin whose serving version changed and whose changes all landed, and per
    change an earlier apply made and was killed before recording (this apply recorded it)."""
    outcome = {id(r.step): r.outcome for r in report.results}
    found = []
    for entry in report.plan.entries:
        pin = entry.pin
        if not entry.steps or any(outcome.get(id(s)) != "applied" for s in entry.steps):
            continue
        if pin.version in entry.current:
            continue  # drift put right around a version that already served: no news
        found.append(_promotion(pin, entry.current))
    pins = {(e.pin.environment, e.pin.model): e.pin for e in report.plan.entries}
    for adoption in report.adoptions:
        pinned = pins.get((adoption.environment, adoption.model))
        if adoption.previous is None or pinned is None or adoption.version in adoption.previous:
            continue  # a plain adoption moved nothing: no news
        found.append(_promotion(pinned, adoption.previous))
    return found


def _promotion(pin: Pin, current: tuple[str, ...]) -> Message:
    action = audit.action_for(pin.version, current)
    previous = ", ".join(current) or "none"
    confidence = "N/A" if pin.confidence is None else f"{pin.confidence:g}"
    rollback = action == "rollback"
    title = "Model Rolled Back" if rollback else "Model Promoted"
    body = "\n".join(
        [
            "Model Rollback Completed" if rollback else "Model Promotion Completed",
            "",
            f"Model: {pin.model}",
            f"New Production Version: {pin.version}",
            f"Previous Version: {previous}",
            f"Comparison Confidence: {confidence}",
            f"Environment: {pin.environment}",
        ]
    )
    return Message(pin.model, pin.environment, f"{title}: {pin.model}", body)


def verify_messages(outcomes: Sequence[Outcome]) -> list[Message]:
    """One message per serving endpoint that does not serve its pinned version."""
    found = []
    for outcome in outcomes:
        if outcome.ok:
            continue
        target = outcome.target
        served = outcome.observation.served
        body = "\n".join(
            [
                "Serving Verification Failed",
                "",
                f"Model: {target.model}",
                f"Environment: {target.environment}",
                f"Pinned Version: {target.expected}",
                f"Served Version: {served if served is not None else 'unknown'}",
                f"Error: {outcome.problem()}",
                f"Endpoint: {outcome.url}",
                f"Waited: {outcome.seconds:.1f}s",
            ]
        )
        found.append(
            Message(
                target.model,
                target.environment,
                f"Serving Verification Failed: {target.model}",
                body,
            )
        )
    return found


def send(found: list[Message], environ: Mapping[str, str] | None = None) -> list[str]:
    """Deliver every message to every configured channel; one line of outcome per delivery."""
    environ = os.environ if environ is None else environ
    webhook = environ.get(WEBHOOK_VARIABLE)
    topic = environ.get(SNS_VARIABLE)
    outcomes = []
    channels: list[tuple[str, str, Callable[[str, Message], None]]] = []
    if webhook:
        channels.append(("webhook", webhook, _post))
    if topic:
        channels.append(("sns", topic, _publish))
    for message in found:
        where = f"{message.model} in {message.environment}"
        for name, address, deliver in channels:
            outcomes.append(_deliver(name, where, deliver, address, message))
    return outcomes


def _deliver(
    channel: str,
    where: str,
    deliver: Callable[[str, Message], None],
    address: str,
    message: Message,
) -> str:
    try:
        deliver(address, message)
    except Exception as error:  # any failure is reported, never raised: the apply stands
        return f"notification failed ({channel}, {where}): {scrub(_reason(error))}"
    return f"notified ({channel}, {where})"


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot reach the webhook: {error.reason}"
    return f"{type(error).__name__}: {error}"


def _post(url: str, message: Message) -> None:
    text = f"*{_slack(message.subject)}*\n{_slack(message.body)}"
    payload = json.dumps({"text": text}).encode()
    # `user:password@` in the webhook URL: urllib would look the whole of it up as the host.
    url, headers = userinfo_as_basic_auth(url, {"Content-Type": "application/json"})
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        response.read()


def _slack(text: str) -> str:
    """Slack's own escaping for message text: `&`, `<` and `>` as entities, so a model named
    `<!channel>` is shown, not a mention of everyone (issue 15 §7)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _publish(topic_arn: str, message: Message) -> None:
    try:
        import boto3
    except ImportError:
        raise RuntimeError("boto3 is not installed: pip install 'mlflow-reconciler[sns]'") from None
    # arn:aws:sns:<region>:<account>:<name>: the topic's own region unless one is configured.
    parts = topic_arn.split(":")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region and len(parts) > 3:
        region = parts[3]
    client = boto3.client("sns", region_name=region)
    client.publish(TopicArn=topic_arn, Subject=message.subject[:100], Message=message.body)
