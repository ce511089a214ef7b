"""`registry:` in an environment's settings: where its models live when not in the command's
registry (another tracking server, another workspace, other credentials).

    registry:
      tracking_uri: ${PROD_MLFLOW_URI}        # or a literal URI without user:password@
      workspace: team-a                       # overrides environments/_defaults.yaml here
      username: ${PROD_MLFLOW_USERNAME}       # secrets: ${VAR} references only
      password: ${PROD_MLFLOW_PASSWORD}
      token: ${PROD_MLFLOW_TOKEN}

Pure. Values stay as written (with `${VAR}`) in the desired state, so no secret enters a plan or a
report; `resolve` reads them from the environment when a command connects, registering each
value with the redaction before anything else is done with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from reconciler.errors import InvalidInput, Problem
from reconciler.pins.documents import Document
from reconciler.redact import register

_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
SECRET_FIELDS = ("username", "password", "token")
# Query parameters that would carry a credential in a literal URI (redact.py masks the same).
_SECRET_QUERY = re.compile(r"(^|[&;])(token|access_token|key|api_key|apikey|password|sig)=", re.I)


@dataclass(frozen=True)
class RegistrySetting:
    """One `registry:` block as written; `file`/`lines` say where, for messages."""

    file: str
    line: int
    tracking_uri: str | None = None
    workspace: str | None = None
    username: str | None = None  # `${VAR}`
    password: str | None = None  # `${VAR}`
    token: str | None = None  # `${VAR}`
    lines: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_document(cls, document: Document) -> RegistrySetting | None:
        data = document.data.get("registry") if isinstance(document.data, dict) else None
        if not isinstance(data, dict):
            return None
        names = ("tracking_uri", "workspace", *SECRET_FIELDS)
        return cls(
            file=document.display,
            line=document.line_of(("registry",)),
            lines=tuple((name, document.line_of(("registry", name))) for name in names),
            **{name: str(data[name]) for name in names if data.get(name) is not None},
        )

    def line_of(self, name: str) -> int:
        return dict(self.lines).get(name, self.line)

    @property
    def own_server(self) -> bool:
        """Whether it names a tracking server of its own (then it is sent only its own
        credentials); a block with only `workspace:` is the command's server, elsewhere in it."""
        return self.tracking_uri is not None


def registry_problems(document: Document) -> list[Problem]:
    """What the schema cannot say well: a secret written as a literal, a literal URI carrying
    credentials, credentials for the command's own server."""
    data = document.data.get("registry") if isinstance(document.data, dict) else None
    if not isinstance(data, dict):
        return []
    problems = []

    def problem(name: str, message: str) -> None:
        line = document.line_of(("registry", name))
        problems.append(Problem(document.display, line, f"registry.{name}", message))

    for name in SECRET_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and not _REFERENCE.match(value):
            problem(
                name,
                f"must be a ${{VAR}} reference (e.g. ${{PROD_MLFLOW_{name.upper()}}}), read "
                "from the environment when the command runs: a secret written in git is refused",
            )
    uri = data.get("tracking_uri")
    if isinstance(uri, str) and not _REFERENCE.match(uri):
        if "${" in uri:
            problem("tracking_uri", "a ${VAR} reference must be the whole value")
        else:
            parts = urlsplit(uri)
            # Any `@` after the scheme: a password may hold `#`, `/` or `?`, which a URL parser
            # takes for the fragment, path or query, and would not see the userinfo.
            if "@" in uri.partition("://")[2]:
                problem(
                    "tracking_uri",
                    "holds user:password@: put credentials in `username`/`password` as ${VAR} "
                    "references (a secret written in git is refused)",
                )
            elif not _port_ok(parts):
                problem(
                    "tracking_uri",
                    "is no URI a registry answers at (its port is not a number; a ` #` in an "
                    "unquoted YAML value starts a comment)",
                )
            elif _SECRET_QUERY.search(parts.query):
                problem(
                    "tracking_uri",
                    "holds a credential in its query: use `token: ${VAR}` instead",
                )
    if uri is None and any(data.get(name) is not None for name in SECRET_FIELDS):
        problem(
            next(name for name in SECRET_FIELDS if data.get(name) is not None),
            "credentials need the `tracking_uri` they are for (the command's own registry "
            "uses MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN)",
        )
    return problems


def _port_ok(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 (urllib checks the port when it is read)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ResolvedRegistry:
    """A `registry:` block with its `${VAR}`s read. Never printed (no repr of the secrets)."""

    tracking_uri: str | None
    username: str | None
    password: str | None
    token: str | None

    def __repr__(self) -> str:
        return "ResolvedRegistry(...)"


def resolve(setting: RegistrySetting, environ: Mapping[str, str]) -> ResolvedRegistry:
    """Read every `${VAR}`; a problem (file, line, field, the variable's name) when one is
    unset or empty (InvalidInput). Values are registered for redaction before they are used."""
    values: dict[str, str | None] = {}
    for name in ("tracking_uri", *SECRET_FIELDS):
        written = getattr(setting, name)
        if written is None:
            values[name] = None
            continue
        reference = _REFERENCE.match(written)
        if reference is None:
            values[name] = written  # a literal URI (checked by registry_problems)
            continue
        variable = reference.group(1)
        value = environ.get(variable, "")
        if name in SECRET_FIELDS:
            register([value])
        if not value.strip():
            raise InvalidInput(
                [
                    Problem(
                        setting.file,
                        setting.line_of(name),
                        f"registry.{name}",
                        f"needs the environment variable {variable}, which is not set",
                    )
                ]
            )
        # A value read from a file ends in a newline: no URI or credential holds one.
        values[name] = value.strip()
    return ResolvedRegistry(**values)
