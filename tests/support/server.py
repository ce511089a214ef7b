"""Start and stop a real `mlflow server` on 127.0.0.1 (used by the test fixture and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

START_TIMEOUT = 120


class ServerFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    workdir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    backend: str | None = None,
    workers: int = 1,
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `mlflow server` with a sqlite backend in `workdir` (or the SQLAlchemy URI `backend`);
    return its URL once healthy. Started again on the same `workdir` and `port`, it serves the
    same registry."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    # One worker, no job runners: ready in ~5 s with ~480 MB instead of ~12 s and ~3 GB (DESIGN §6).
    server_env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    server_env.pop("MLFLOW_TRACKING_URI", None)
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", str(workers),
        "--backend-store-uri", backend or f"sqlite:///{workdir / 'mlflow.db'}",
        "--default-artifact-root", str(workdir / "artifacts"),
        *extra,
    ]  # fmt: skip
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=server_env, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"mlflow server exited with {process.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return url, process
        except OSError:
            time.sleep(0.25)
    stop_server(process)
    raise ServerFailed(f"mlflow server not healthy after {START_TIMEOUT}s:\n{_tail(log)}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers through the process group of the PID we started."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def start_or_fail(
    workdir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    backend: str | None = None,
    workers: int = 1,
) -> tuple[str, subprocess.Popen[bytes]]:
    """start_server for fixtures: a server that will not start fails the test with its log."""
    import pytest

    try:
        return start_server(workdir, *extra, env=env, port=port, backend=backend, workers=workers)
    except ServerFailed as error:
        pytest.fail(str(error))


def start_auth_server(
    workdir: Path, admin: str, password: str, *extra: str
) -> tuple[str, subprocess.Popen[bytes]]:
    """`mlflow server --app-name basic-auth` (start_or_fail), its own sqlite auth database,
    `admin` with `password` its admin, READ the default permission."""
    config = workdir / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'basic_auth.db'}\n"
        f"admin_username = {admin}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = true\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key-not-for-production",
    }
    return start_or_fail(workdir, "--app-name", "basic-auth", *extra, env=env)
