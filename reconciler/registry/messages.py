"""What the adapter says when MLflow fails: the first line, the server's own words, the
budget that ran out, a plain cause."""

from __future__ import annotations

import logging
import os

from reconciler.redact import ScrubbingFilter

# MLflow's HTTP retries and timeout when the user set none (DESIGN §6; design notes, "HTTP
# defaults"): the adapter sets them, and a timeout message names them.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}

# MLflow writes "🏃 View run <name> at: <url>" to stdout whenever a run ends on a REST store
# (set_terminated; measured on 3.17.2: a copy's run broke `apply --format json`). Our stdout is
# the report: always set, whatever the user chose.
QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def credentials(*, configured: bool) -> str:
    """Where the credentials a registry refused come from: an environment's `registry:`
    settings, or the command's variables."""
    if configured:
        return "the username and password (or token) of its registry settings"
    return "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"


def server_says(message: str) -> str:
    """The server's own words from MLflow's "API request ... Response body: '...'" wrapper."""
    marker = "Response body: '"
    if marker in message:
        return message.split(marker, 1)[1].rstrip("'")
    return message


def no_answer() -> str:
    """A timeout, with the budget that ran out and the variables that change it."""
    timeout = os.environ.get(
        "MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    )
    retries = os.environ.get(
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    )
    attempts = int(retries) + 1 if retries.strip().isdigit() else None
    tries = f", {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    return (
        f"no answer within {timeout} s{tries} (set MLFLOW_HTTP_REQUEST_TIMEOUT and "
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES to wait longer)"
    )


def cause(message: str) -> str:
    for needle, plain in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host not found"),
        ("nodename nor servname", "host not found"),
        ("timed out", "timed out"),
        ("Max retries exceeded", "no answer after retries"),
    ):
        if needle in message:
            return plain
    return message


def route_logging() -> None:
    """Quiet MLflow's chatter (database creation, each urllib3 retry: our error says it once,
    redacted); under `reconciler --debug` send all of it through the scrubbing root handler."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        for name in ("mlflow", "urllib3", "alembic"):
            logger = logging.getLogger(name)
            logger.handlers.clear()  # MLflow installs its own stderr handler at import
            logger.propagate = True
            logger.setLevel(logging.DEBUG)
        return
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    # The warnings MLflow still prints through its own handler are scrubbed like ours.
    for handler in logging.getLogger("mlflow").handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter())


# The one failure that means "this server cannot archive in the same call" (DESIGN §6): MLflow's
# SQL store compares the integer version column with the REST string, which psycopg v3 (what a
# plain `postgresql://` backend URI selects under SQLAlchemy 2.1) refuses; psycopg2 casts silently.
_ATOMIC_ARCHIVE_REFUSED = (
    "UndefinedFunction",
    "operator does not exist: integer <> character varying",
)
NO_ATOMIC_ARCHIVE = (
    "the registry cannot archive and transition in one call (its server's PostgreSQL driver, "
    "psycopg 3, rejects MLflow's archive query: operator does not exist: integer <> character "
    "varying); moving each version in first, then archiving the previous holders one by one "
    "(a postgresql+psycopg2:// backend URI on the server restores the atomic call)"
)


def refuses_atomic_archive(error_code: str, message: str) -> bool:
    """True for the server's answer to archive_existing_versions on psycopg v3, and only that."""
    return error_code == "BAD_REQUEST" and all(part in message for part in _ATOMIC_ARCHIVE_REFUSED)
