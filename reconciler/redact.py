"""Keeps credentials out of all we print: URIs lose `user:password@` and credential-looking query
parameters, known secrets vanish."""

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
_MASK = "***"
# Where a URI's authority ends: a password may hold a raw `@` (`http://u:p@ss@host`), so the
# userinfo runs to the *last* `@` before the path, query, fragment or the end of the word.
_URI_END = r"/?#\s\"'<>"
_USERINFO = re.compile(rf"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^{_URI_END}]*@")
# Query parameters that carry credentials (OAuth tokens, SAS/presigned signatures, API keys).
# Named exactly; `*secret*`, `*password*`, `*signature*` and `*credential*` anywhere in the name.
# `page_token` (MLflow's pagination) is not one: it stays readable in --debug.
_SECRET_NAMES = (
    r"token|access_token|refresh_token|id_token|auth|sig|key|api_key|apikey|passwd|pwd"
    r"|[\w.-]*secret[\w.-]*|[\w.-]*password[\w.-]*|[\w.-]*signature[\w.-]*"
    r"|[\w.-]*credential[\w.-]*"
)
# A value runs to the next parameter, fragment, quote or space; a `:` or `.` that ends it is the
# sentence's ("at http://h/?token=t: timed out"), not the value's.
_QUERY_SECRET = re.compile(
    rf"(?P<name>[?&;](?:{_SECRET_NAMES})=)(?:[^&;#\s\"'<>:.]|[:.](?![\s\"'<>]|$))*",
    re.IGNORECASE,
)


def redact_uri(uri: str) -> str:
    """`https://user:pw@host/x?token=t` → `https://***@host/x?token=***`; works on any text."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{_MASK}@", uri)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('name')}{_MASK}", text)


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
    # Known values first: a password with an `@` or `&` in it goes whole, before the URI rules
    # could cut it in two. Longest first, so a secret that contains another is removed whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return redact_uri(text)


class ScrubbingFilter(logging.Filter):
    """Attached to every log handler we print through: each record is scrubbed before it is
    written."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
