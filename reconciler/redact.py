"""Keeps credentials out of all we print: URIs lose `user:password@` and credential-looking query
parameters, known secrets vanish: the secret variables' values, and every value registered here
(what `verify` read for a `${VAR}`), in each spelling Python or JSON may give it."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

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


# Values registered by `register`, in every spelling; for the life of the process (a CLI run).
_REGISTERED: set[str] = set()
_REGISTERED_LOCK = threading.Lock()
# A piece shorter than this (a line of a multi-line value, a value stripped of its newline) is not
# registered: masking every "503" or "v3" would garble what we print, and protect nothing.
MIN_PIECE = 4


def register(values: Iterable[str]) -> None:
    """From now on, scrub these values wherever they show: whole, stripped of surrounding
    whitespace (a value read from a file ends in a newline), line by line, and as repr(), JSON
    and URL-quoting or -unquoting spell them (an error message shows `'tok\\n'`, a report
    `"tok\\"x"`, a backend echoing its request path `a/b` for `a%2Fb`)."""
    forms: set[str] = set()
    for value in values:
        pieces = {value, value.strip(), *(line.strip() for line in value.splitlines())}
        for piece in pieces:
            if piece == value or len(piece) >= MIN_PIECE:
                forms |= _spellings(piece)
    with _REGISTERED_LOCK:
        _REGISTERED.update(form for form in forms if form)


def _spellings(text: str) -> set[str]:
    return {
        text,
        repr(text)[1:-1],
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        quote(text, safe=""),
        quote_plus(text, safe=""),
        # A backend may echo the request path decoded: `%2F` in the value comes back as `/`.
        unquote(text),
        unquote_plus(text),
    }


def known_secrets() -> list[str]:
    """The secret values in the environment, the Basic auth header value built from them, and
    every registered value."""
    with _REGISTERED_LOCK:
        secrets = list(_REGISTERED)
    secrets += [os.environ.get(name, "") for name in SECRET_VARIABLES]
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if user and password:
        secrets.append(base64.b64encode(f"{user}:{password}".encode()).decode())
    return secrets


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove URI credentials, the known secrets and `secrets` from any text we show."""
    # Known values first: a password with an `@` or `&` in it goes whole, before the URI rules
    # could cut it in two. Longest first, so a secret that contains another is removed whole.
    for secret in sorted({s for s in (*known_secrets(), *secrets) if s}, key=len, reverse=True):
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
