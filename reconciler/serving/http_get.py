"""One poll of a serving endpoint: a GET whose whole exchange (connect, headers, body) another
thread can cut off, at the poll's deadline or when verify is stopped.

A socket timeout bounds each read, not the answer: a server that sends its headers and then a
byte every 2 s never trips it. So each connection's socket is handed to a `Cut` as soon as it is
connected; `Cut.now()` shuts it down (from any thread), the blocked read returns at once, and
the poll reports no answer. Redirects are not followed (urllib would send our headers, a bearer
token, wherever they point); bodies are read up to MAX_BODY bytes; proxies from the environment
work as with plain urllib.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from reconciler.pins.endpoints import Request
from reconciler.redact import scrub
from reconciler.serving import verify
from reconciler.serving.verify import Observation

MAX_BODY = 1024 * 1024


class Cut:
    """The socket of one poll in flight, and the means to end it from another thread."""

    def __init__(self, budget: float) -> None:
        self.budget = budget  # seconds the poll may take, all of it
        self.deadline = time.monotonic() + budget
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.done = False  # cut: whatever the poll reads after this is not an answer
        self.interrupted = False  # cut because verify was stopped, not by the deadline
        self.completed = False  # the whole answer was read in time: no cut any more

    def attach(self, connected: socket.socket) -> None:
        # A duplicate of the descriptor: TLS detaches the socket it wraps, and a shutdown
        # through any descriptor of a connection ends it for all of them.
        with self._lock:
            self._socket = connected.dup()
            if self.done:
                _shut(self._socket)

    def now(self, interrupted: bool = False) -> None:
        with self._lock:
            if self.completed or self.done:
                return
            self.interrupted = interrupted
            self.done = True
            if self._socket is not None:
                _shut(self._socket)

    def complete(self) -> bool:
        """The answer is read: True if in time (it then stands, whenever the cut comes)."""
        with self._lock:
            self.completed = not self.done
            return self.completed

    def release(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def _shut(connected: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer or by us
        connected.shutdown(socket.SHUT_RDWR)


class _Connection(http.client.HTTPConnection):
    def __init__(self, *args: Any, cut: Cut, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(_connect, cut)


class _TlsConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, cut: Cut, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(_connect, cut)


def _connect(cut: Cut, *args: Any, **kwargs: Any) -> socket.socket:
    connected = socket.create_connection(*args, **kwargs)
    cut.attach(connected)
    return connected


class _Plain(urllib.request.HTTPHandler):
    def __init__(self, cut: Cut) -> None:
        super().__init__()
        self._cut = cut

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_Connection, cut=self._cut), req)


class _Tls(urllib.request.HTTPSHandler):
    def __init__(self, cut: Cut) -> None:
        super().__init__()
        self._cut = cut

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_TlsConnection, cut=self._cut), req)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


def fetch(request: Request, field: str, cut: Cut) -> Observation:
    """One GET, judged, within `cut.budget` seconds as long as `cut` is cut at its deadline.
    Every failure becomes an Observation; secrets are scrubbed from it."""
    budget = cut.budget
    try:
        observation = _fetch(request, field, budget, cut)
    finally:
        cut.release()
    if cut.done:  # cut off before the whole answer was read: a half-read body is no answer
        return verify.INTERRUPTED if cut.interrupted else verify.no_answer(budget)
    if observation.error:
        return Observation(
            observation.served,
            scrub(observation.error, request.secrets),
            observation.reload_error,
            observation.rank,
        )
    return observation


def _fetch(request: Request, field: str, budget: float, cut: Cut) -> Observation:
    opener = urllib.request.build_opener(_NoRedirect, _Plain(cut), _Tls(cut))
    http_request = urllib.request.Request(
        request.url, headers={"Accept": "application/json", **request.headers}, method="GET"
    )
    try:
        try:
            response = opener.open(http_request, timeout=budget)
        except urllib.error.HTTPError as error:  # a status urllib does not like: still an answer
            response = error
        with response:
            body = response.read(MAX_BODY)
        if not cut.complete():
            return verify.no_answer(budget)  # too late: `fetch` says why
        return verify.judge(response.status or 0, body, field)
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            return verify.no_answer(budget)
        return verify.unreachable(str(error.reason))
    except TimeoutError:
        return verify.no_answer(budget)
    except (OSError, http.client.HTTPException) as error:
        return verify.unreachable(f"{type(error).__name__}: {error}")
