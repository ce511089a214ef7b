"""The serving contract: where an environment's (or a pin's) model answers which version it serves.

    serving:
      url: https://serving.example.com/{model}/health   # GET, answers JSON
      version_field: model.version                       # dotted path (default: version)
      headers: {Authorization: "Bearer ${SERVING_TOKEN}"} # ${VAR} read at verify time (url too)
      timeout: 5m                                        # how long serving may take to catch up
      interval: 5s                                       # between polls

Pure: parses schema-valid data into an `Endpoint` and reports what the schema cannot say (unknown
placeholders, malformed `${VAR}`, a header value no request can carry) as problems at the key's
line. Header values stay as written (with `${VAR}`) until `resolve` runs at verify time, so
secrets never enter the desired state, a plan or a report; `resolve` registers every value it
reads with the redaction before doing anything else with it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from reconciler.errors import MissingVariable, Problem, UnsendableVariable
from reconciler.pins.documents import Document, JsonPath
from reconciler.redact import redact_uri, register

DEFAULT_FIELD = "version"
DEFAULT_TIMEOUT = "5m"
DEFAULT_INTERVAL = "5s"
_UNITS = {"s": 1, "m": 60, "h": 3600}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDERS = ("model", "environment")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Endpoint:
    """One `serving:` block, as written (placeholders and `${VAR}` not yet filled in)."""

    url: str
    version_field: str = DEFAULT_FIELD
    headers: tuple[tuple[str, str], ...] = ()
    timeout: str = DEFAULT_TIMEOUT
    interval: str = DEFAULT_INTERVAL
    # Where `url` and each `headers.<name>` stand in their file, for messages (not compared).
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    @classmethod
    def from_data(cls, data: Mapping[str, Any], document: Document | None = None) -> Endpoint:
        """From schema-valid YAML data (`serving:` in settings or a pin); with its `document`,
        the lines of its fields too."""
        headers = tuple(sorted((data.get("headers") or {}).items()))
        lines: tuple[tuple[str, int], ...] = ()
        if document is not None:
            fields = ["url", *(f"headers.{name}" for name, _value in headers)]
            lines = tuple(
                (name, document.line_of(("serving", *name.split(".", 1)))) for name in fields
            )
        return cls(
            url=data["url"],
            version_field=data.get("version_field", DEFAULT_FIELD),
            headers=headers,
            timeout=data.get("timeout", DEFAULT_TIMEOUT),
            interval=data.get("interval", DEFAULT_INTERVAL),
            lines=lines,
        )

    def line_of(self, name: str) -> int | None:
        return dict(self.lines).get(name)

    def url_for(self, model: str, environment: str) -> str:
        values = {"model": model, "environment": environment}
        # One pass, so a model name holding "{environment}" is not filled in twice; `${VAR}` is
        # left for `resolve`. Names are quoted: a space or a '#' stays part of the path.
        return _PLACEHOLDER.sub(
            lambda m: (
                m.group(0)
                if m.start() > 0 and self.url[m.start() - 1] == "$"
                else quote(values[m.group(1)], safe="")
            ),
            self.url,
        )

    @property
    def timeout_seconds(self) -> float:
        return duration_seconds(self.timeout)

    @property
    def interval_seconds(self) -> float:
        return duration_seconds(self.interval)


def duration_seconds(text: str) -> int:
    """`90s`, `5m`, `1h` (schema-checked) in seconds."""
    return int(text[:-1]) * _UNITS[text[-1]]


def endpoint_problems(document: Document, path: JsonPath) -> list[Problem]:
    """What the schema cannot check in the `serving:` block at `path` of `document`."""
    data = document.data
    for part in path:
        data = data[part]
    problems = []
    # `${VAR}` is not a placeholder: take those out before looking for `{name}`.
    for name in _PLACEHOLDER.findall(_VARIABLE.sub("", data["url"])):
        if name not in _PLACEHOLDERS:
            problems.append(
                Problem(
                    document.display,
                    document.line_of((*path, "url")),
                    ".".join(str(p) for p in (*path, "url")),
                    f"unknown placeholder {{{name}}} (allowed: {{model}}, {{environment}})",
                )
            )
    texts: list[tuple[tuple[str, ...], str]] = [(("url",), data["url"])]
    texts += [(("headers", h), v) for h, v in sorted((data.get("headers") or {}).items())]
    for key, value in texts:
        unsendable = _unsendable(value, key[0])
        if unsendable:  # the value may be a credential: say what it holds, never quote it
            problems.append(
                Problem(
                    document.display,
                    document.line_of((*path, *key)),
                    ".".join(str(p) for p in (*path, *key)),
                    f"holds {unsendable}, which {_CARRIER[key[0]]} cannot carry",
                )
            )
        for name in _VARIABLE.findall(value):
            if not _VARIABLE_NAME.fullmatch(name):
                problems.append(
                    Problem(
                        document.display,
                        document.line_of((*path, *key)),
                        ".".join(str(p) for p in (*path, *key)),
                        f"${{{name}}} is not an environment variable name "
                        "(letters, digits and '_', not starting with a digit)",
                    )
                )
    return problems


# What a request cannot carry. A header value: no control character but a tab (RFC 9110's
# field-vchar, SP, HTAB), Latin-1 only (http.client's encoding); a URL: no space or control
# character, ASCII only (percent-encode the rest). The schema refuses whitespace in a literal
# URL already; a `${VAR}`'s value is checked here.
_CARRIER = {"headers": "a header value", "url": "a URL"}
_NAMED = {"\n": "a newline", "\r": "a carriage return", " ": "a space", "\t": "a tab"}


def _unsendable(text: str, where: str) -> str | None:
    """What in `text` cannot go into a header value (`where` "headers") or a URL ("url")."""
    for char in text:
        code = ord(char)
        if where == "headers" and char == "\t":
            continue
        if code < 0x20 or code == 0x7F or (where == "url" and char == " "):
            return _NAMED.get(char, "a control character")
        if code > (0xFF if where == "headers" else 0x7F):
            return "a character that is not " + ("Latin-1" if where == "headers" else "ASCII")
    return None


def variables(endpoint: Endpoint) -> list[str]:
    """The environment variables the URL and the headers read."""
    texts = [endpoint.url, *(value for _, value in endpoint.headers)]
    return sorted({name for text in texts for name in _VARIABLE.findall(text)})


@dataclass(frozen=True)
class Request:
    """One endpoint ready to poll. `shown_url` is what may be printed: placeholders filled in,
    `${VAR}` left as written, user:password removed; `secrets` are the values read for `${VAR}`,
    to be scrubbed from anything the answer makes us say."""

    url: str
    headers: Mapping[str, str]
    shown_url: str
    secrets: tuple[str, ...]


def resolve(
    endpoint: Endpoint, model: str, environment: str, environ: Mapping[str, str], where: str
) -> Request:
    """Fill in the URL's placeholders and every `${VAR}` from `environ`; MissingVariable naming the
    first variable that is unset or empty, UnsendableVariable naming the first whose value no
    request can carry where it is used (`where` says whose endpoint needs it)."""
    names = variables(endpoint)
    # Before anything else is done with them: whatever fails from here on, a message or a
    # traceback cannot show them.
    register(environ[name] for name in names if environ.get(name))
    uses = [("url", endpoint.url)] + [(f"headers.{h}", v) for h, v in endpoint.headers]

    def problem(name: str, message: str) -> list[Problem]:
        used = next(f for f, text in uses if name in _VARIABLE.findall(text))
        return [Problem(where, endpoint.line_of(used), f"serving.{used}", message)]

    for name in names:
        if not environ.get(name):
            raise MissingVariable(
                problem(name, f"needs the environment variable {name}, which is not set")
            )
    for used, text in uses:
        carrier = used.split(".")[0]
        for name in dict.fromkeys(_VARIABLE.findall(text)):
            unsendable = _unsendable(environ[name], carrier)
            if unsendable:
                hint = (
                    " (a value read from a file often ends in one)"
                    if "newline" in unsendable
                    else ""
                )
                raise UnsendableVariable(
                    problem(
                        name,
                        f"the environment variable {name} holds {unsendable}, which "
                        f"{_CARRIER[carrier]} cannot carry{hint}",
                    )
                )

    def fill(text: str) -> str:
        return _VARIABLE.sub(lambda m: environ[m.group(1)], text)

    template = endpoint.url_for(model, environment)
    url, headers = userinfo_as_basic_auth(
        fill(template), {header: fill(value) for header, value in endpoint.headers}
    )
    secrets = [environ[name] for name in names]
    for name, value in headers.items():
        if name.lower() == "authorization":  # the whole value, and its credentials alone
            secrets += [value, value.partition(" ")[2]]
    register(secrets)
    return Request(
        url=url,
        headers=headers,
        shown_url=redact_uri(template),
        secrets=tuple(secrets),
    )


def userinfo_as_basic_auth(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """urllib does not send `user:password@` itself: it becomes a Basic Authorization header
    (unless the headers set one), and leaves the URL."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, headers
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    if not any(name.lower() == "authorization" for name in headers):
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        headers = {**headers, "Authorization": f"Basic {token}"}
    return urlunsplit(parts._replace(netloc=host)), headers
