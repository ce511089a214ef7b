"""How to reach one registry, and the gate that lets one process talk to several.

MLflow's client takes a registry's credentials and workspace from the process environment at
request time, not from the client object: `get_default_host_creds` reads MLFLOW_TRACKING_USERNAME,
_PASSWORD, _TOKEN (and _AUTH, _AWS_SIGV4, _CLIENT_CERT_PATH) for every REST call and for every
artifact transfer (`HttpArtifactRepository`, `mlflow-artifacts:`), and `http_request` adds the
workspace header from a ContextVar or, failing that, MLFLOW_WORKSPACE. The artifact repositories
move files on their own thread pool, which sees neither our ContextVars nor anything but the
environment. So a registry's settings must be *in the environment* while its calls run, and two
registries with different settings cannot run at the same moment: the gate below lets the calls
of one set of settings run together, switches the environment between sets when the holders
are done, and gives the user's environment back whenever nobody holds it (design notes, "Issue
17: one process, several registries").
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from reconciler import redact

USERNAME = "MLFLOW_TRACKING_USERNAME"
PASSWORD = "MLFLOW_TRACKING_PASSWORD"
TOKEN = "MLFLOW_TRACKING_TOKEN"
WORKSPACE = "MLFLOW_WORKSPACE"
TRACKING_URI = "MLFLOW_TRACKING_URI"
REGISTRY_URI = "MLFLOW_REGISTRY_URI"
# What MLflow turns into a request's identity besides user, password and token: an auth plugin
# (`MLFLOW_TRACKING_AUTH`), AWS SigV4 signing, a client certificate. The command's must never
# reach a configured registry either. TLS trust (INSECURE_TLS, SERVER_CERT_PATH) and the HTTP
# retry budget are the process's, shared by all registries.
OTHER_IDENTITY = (
    "MLFLOW_TRACKING_AUTH",
    "MLFLOW_TRACKING_AWS_SIGV4",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
)

# name -> value; None: unset for the calls. A name not in it keeps the user's value.
Settings = Mapping[str, str | None]
_Key = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Connection:
    """How to reach one registry. `configured=False`: the command's registry (--tracking-uri /
    MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, MLFLOW_WORKSPACE as today).
    `configured=True`: an environment's `registry:` settings: only the values given here are
    sent (the command's MLFLOW_TRACKING_* credentials and MLFLOW_WORKSPACE are never sent to it)."""

    tracking_uri: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    configured: bool = False

    def register_secrets(self) -> None:
        """Scrub this connection's password and token (and the Basic header made of them) from
        everything we print. The username is no secret: masking "admin" everywhere would garble
        lease owners and messages, and protect nothing."""
        redact.register(_secrets(self.username, self.password, self.token))

    def settings(self, workspace: str | None) -> dict[str, str | None]:
        """The environment this registry's calls run in, as the gate applies it. The command's
        registry changes nothing but the workspace its repository chose (`workspace`, None: as
        the user set it). A configured registry gets exactly its own values: every credential
        variable it does not set is unset for its calls, and so is MLFLOW_WORKSPACE unless it
        works in one; its URI also answers MLflow's fallbacks to the tracking/registry URI
        (e.g. a `models:/` or `mlflow-artifacts:` URI resolved without one)."""
        if not self.configured:
            return {} if workspace is None else {WORKSPACE: workspace}
        values: dict[str, str | None] = dict.fromkeys(OTHER_IDENTITY)
        values |= {
            USERNAME: self.username,
            PASSWORD: self.password,
            TOKEN: self.token,
            WORKSPACE: workspace,
        }
        if self.tracking_uri:
            values |= {TRACKING_URI: self.tracking_uri, REGISTRY_URI: self.tracking_uri}
        return values


def _secrets(username: str | None, password: str | None, token: str | None) -> list[str]:
    found = [value for value in (password, token) if value]
    if username and password:
        found.append(base64.b64encode(f"{username}:{password}".encode()).decode())
    return found


@dataclass
class _Turn:
    """The callers of one set of settings waiting for the gate, admitted together."""

    key: _Key
    waiting: int = 0
    started: bool = False


class EnvironmentGate:
    """Calls with the same settings hold the gate together (their parallelism is kept); calls
    with other settings wait until the holders are done, in arrival order (a stream of calls to
    one registry cannot starve another), then the environment switches to their settings. A
    call inside a call of the same thread with the same settings enters at once (re-entrant);
    with other settings it would wait for itself, so it is refused. With nobody holding the
    gate, the environment is exactly as the user set it."""

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        self._environ: MutableMapping[str, str] = os.environ if environ is None else environ
        self._condition = threading.Condition()
        self._key: _Key | None = None  # the settings in force; None: the user's environment
        self._holders = 0
        self._queue: list[_Turn] = []
        self._saved: dict[str, str | None] = {}  # the user's values of the names we changed
        self._mine = threading.local()  # this thread's held keys, innermost last
        self._user_secrets: list[str] = []  # registered with redact already

    @contextmanager
    def holding(self, settings: Settings) -> Iterator[None]:
        key: _Key = tuple(sorted(settings.items()))
        self._enter(key)
        held: list[_Key] = self._held()
        held.append(key)
        try:
            yield
        finally:
            held.pop()
            self._leave()

    def _held(self) -> list[_Key]:
        if not hasattr(self._mine, "keys"):
            self._mine.keys = []
        keys: list[_Key] = self._mine.keys
        return keys

    def _enter(self, key: _Key) -> None:
        held = self._held()
        with self._condition:
            if held:
                if held[-1] != key:
                    raise RuntimeError(
                        "a call to one registry inside a call to another would wait for itself"
                    )
                self._holders += 1  # re-entrant: never behind the queue, or it would deadlock
                return
            if not self._queue and (self._holders == 0 or self._key == key):
                self._switch(key)
                self._holders += 1
                return
            turn = next((t for t in self._queue if t.key == key), None)
            if turn is None:
                turn = _Turn(key)
                self._queue.append(turn)
            turn.waiting += 1
            while not turn.started:
                self._condition.wait()

    def _leave(self) -> None:
        with self._condition:
            self._holders -= 1
            if self._holders:
                return
            if self._queue:
                turn = self._queue.pop(0)
                self._switch(turn.key)
                self._holders = turn.waiting  # admitted as one, before anyone else can enter
                turn.started = True
                self._condition.notify_all()
            else:
                self._switch(None)

    def _switch(self, key: _Key | None) -> None:
        """Under the condition's lock, with no holders: the user's environment, then `key`'s."""
        if key == self._key:
            return
        if self._key is None:
            # While the environment is switched, scrub still knows the user's own secrets.
            env = self._environ
            secrets = _secrets(env.get(USERNAME), env.get(PASSWORD), env.get(TOKEN))
            if secrets != self._user_secrets:
                redact.register(secrets)
                self._user_secrets = secrets
        for name, value in self._saved.items():
            _put(self._environ, name, value)
        self._saved = {}
        for name, value in key or ():
            self._saved[name] = self._environ.get(name)
            _put(self._environ, name, value)
        self._key = key


def _put(environ: MutableMapping[str, str], name: str, value: str | None) -> None:
    if value is None:
        environ.pop(name, None)
    else:
        environ[name] = value


# The one gate of the process: every MLflow call of every MlflowRegistry passes through it.
GATE = EnvironmentGate()
