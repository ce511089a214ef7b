"""Keeps credentials out of all we print: URIs lose `user:password@`, known secrets vanish."""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Iterable

# A Slack webhook URL is a credential too: whoever has it can post to the channel.
SECRET_VARIABLES = (
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "RECONCILER_WEBHOOK_URL",
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_MASK = "***"


def redact_uri(uri: str) -> str:
    """`https://user:pw@host/x` → `https://***@host/x`; other URIs unchanged."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{_MASK}@", uri)


def known_secrets() -> list[str]:
    """The secret values in the environment, and the Basic auth header value built from them."""
    secrets = [os.environ.get(name, "") for name in SECRET_VARIABLES]
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if user and password:
        secrets.append(base64.b64encode(f"{user}:{password}".encode()).decode())
    return secrets


def scrub(text: str, secrets: Iterable[str] | None = None) -> str:
    """Remove URI credentials and the values of secret variables from any text we show."""
    if secrets is None:
        secrets = known_secrets()
    text = redact_uri(text)
    # Longest first, so a secret that contains another is removed whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


class ScrubbingFilter(logging.Filter):
    """Attached to the debug log handler: every record is scrubbed before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
