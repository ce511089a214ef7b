"""The HTTP side and the command line of the reference backend.

    GET  /health   200 {"status": "ok", "model", "stage" | "alias", "version", "run_id"}
                   503 {"status": "loading", ...} until a first version is loaded
                   503 {"status": "no version", ..., "reload_error": "<why>"} while the stage or
                   alias names no version (the model was retired): nothing is served
                   (`reload_error`, on any answer, says why the backend does not serve what the
                   registry names)
    POST /predict  [{"feature": value, ...}, ...] (or {"rows": [...]}) ->
                   {"model", "version", "predictions": [...]}; 503 {"error"} when nothing serves

Binds 127.0.0.1 unless told otherwise: a model server is not a public service by accident.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from serving.follower import Follower, Loaded

MAX_REQUEST = 10 * 1024 * 1024
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")


def redact(text: str) -> str:
    """No `user:password@` from a tracking URI in anything we say."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def health(follower: Follower) -> tuple[int, dict[str, Any]]:
    current = follower.current
    document: dict[str, Any] = {
        "status": "ok" if current else "no version" if follower.names_none else "loading",
        "model": follower.name,
        ("stage" if follower.stage else "alias"): follower.stage or follower.alias,
        "version": current.version if current else None,
        "run_id": current.run_id if current else None,
    }
    if follower.reload_error:
        document["reload_error"] = redact(follower.reload_error)
    return (200 if current else 503), document


def predict(name: str, current: Loaded, body: bytes) -> dict[str, Any]:
    """Predictions from the one model `current` holds (read once by the caller)."""
    import pandas as pd

    data = json.loads(body)
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise ValueError('send a non-empty JSON list of rows, or {"rows": [...]}')
    predictions = current.model.predict(pd.DataFrame(rows))
    listed = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    return {"model": name, "version": current.version, "predictions": listed}


def make_server(follower: Follower, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/health":
                self._send(404, {"error": "not found: GET /health, POST /predict"})
                return
            self._send(*health(follower))

        def do_POST(self) -> None:
            if self.path.split("?")[0] != "/predict":
                self._send(404, {"error": "not found: GET /health, POST /predict"})
                return
            current = follower.current  # one model for the whole request
            if current is None:
                why = redact(follower.reload_error or "") or "no model loaded yet"
                self._send(503, {"error": why})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(400, {"error": "a Content-Length is needed"})
                return
            if length > MAX_REQUEST:
                self._send(413, {"error": f"request larger than {MAX_REQUEST} bytes"})
                return
            try:
                answer = predict(follower.name, current, self.rfile.read(length))
            except Exception as error:  # bad rows: the client's problem, said plainly
                self._send(400, {"error": f"{type(error).__name__}: {error}"})
                return
            self._send(200, answer)

        def _send(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per load, not per request

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve the version a registry stage or alias names; reload when it moves.",
    )
    parser.add_argument("--model", required=True, help="Registered model name.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stage", help="Serve models:/MODEL/STAGE (e.g. Production).")
    which.add_argument("--alias", help="Serve models:/MODEL@ALIAS (e.g. champion).")
    parser.add_argument("--port", type=int, required=True, help="Port to listen on.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    parser.add_argument(
        "--interval",
        type=float,
        default=10.0,
        help="Seconds between registry polls (default 10).",
    )
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI).",
    )
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import mlflow
    from mlflow import MlflowClient

    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
        mlflow.set_registry_uri(args.tracking_uri)
    client = MlflowClient(tracking_uri=args.tracking_uri, registry_uri=args.tracking_uri)

    def log(line: str) -> None:
        print(redact(line), file=sys.stderr, flush=True)

    follower = Follower(client, args.model, stage=args.stage, alias=args.alias, log=log)
    server = make_server(follower, args.host, args.port)
    stop = threading.Event()
    poller = threading.Thread(
        target=follower.follow, args=(stop, args.interval), name="registry-poll", daemon=True
    )
    # SIGTERM ends serve_forever from another thread (it cannot be stopped from its own).
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log(f"serving {follower.follows} on http://{args.host}:{server.server_address[1]}")
    poller.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    log("stopped")
