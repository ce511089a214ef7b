"""A loopback HTTP proxy that forwards to a real MLflow server, records every request, and can
inject faults: error statuses (with or without Retry-After), connection resets, hangs past the
client's timeout, and answers lost after the server applied the request.

Tests point the CLI at the proxy to count what it really sends (e.g. zero writes on a re-apply)
and to see how apply behaves when the network does not, without reaching into MLflow's client.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
# MLflow searches with GET; a client that POSTs a search is still reading.
READ_POSTS = ("/search",)


FaultKind = Literal["status", "reset", "hang", "lose_response"]


@dataclass
class Fault:
    """Fault the next `times` requests whose path contains `match`."""

    kind: FaultKind
    match: str
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    hang_seconds: float = 0.0
    skip: int = 0  # let this many matching requests through first
    after: str | None = None  # armed only once a request containing this has gone through
    injected: int = 0
    armed: bool = False


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        host, port = target.hostname or "127.0.0.1", target.port
        self.requests: list[tuple[str, str]] = []
        # The MLflow workspace each request named (header X-MLFLOW-WORKSPACE), in step.
        self.workspaces: list[str | None] = []
        # The Authorization header each request carried, in step (whose credentials it sent).
        self.authorizations: list[str | None] = []
        self.faults: list[Fault] = []
        # Called with (method, path) before a request is forwarded: lets a test act "between"
        # the CLI's requests (a hand edit in the UI at the worst moment).
        self.on_request: Callable[[str, str], None] | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.requests.append((self.command, self.path))
                    proxy.workspaces.append(self.headers.get("X-MLFLOW-WORKSPACE"))
                    proxy.authorizations.append(self.headers.get("Authorization"))
                    fault = proxy._take_fault(self.path)
                if fault is not None and fault.kind != "lose_response":
                    self._inject(fault)
                    return
                if proxy.on_request is not None:
                    proxy.on_request(self.command, self.path)
                connection = http.client.HTTPConnection(host, port, timeout=60)
                try:
                    self._relay(connection, body, fault)
                finally:
                    # Also when the client went away mid-answer (a broken pipe): never leak it.
                    connection.close()

            def _relay(
                self,
                connection: http.client.HTTPConnection,
                body: bytes | None,
                fault: Fault | None,
            ) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if fault is not None:  # lose_response: the server did it; the client never hears
                    connection.close()
                    self._reset()
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _inject(self, fault: Fault) -> None:
                if fault.kind == "status":
                    payload = json.dumps(
                        {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected fault"}
                    ).encode()
                    self.send_response(fault.status)
                    if fault.retry_after is not None:
                        self.send_header("Retry-After", fault.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault.kind == "hang":
                    time.sleep(fault.hang_seconds)
                self._reset()

            def _reset(self) -> None:
                # SO_LINGER 0: close with a TCP reset, as a crashed peer or a middlebox would.
                self.request.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.request.close()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.after is not None and not fault.armed:
                fault.armed = fault.after in path
                continue
            if fault.match in path and fault.injected < fault.times + fault.skip:
                fault.injected += 1
                if fault.injected > fault.skip:
                    return fault
                return None
        return None

    def writes(self) -> list[tuple[str, str]]:
        with self._lock:
            return [
                (method, path)
                for method, path in self.requests
                if method in WRITE_METHODS and not any(r in path for r in READ_POSTS)
            ]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
