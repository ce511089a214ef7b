"""Start and stop a throwaway PostgreSQL server on 127.0.0.1 (the test fixture and benchmarks).

It uses Debian's `postgresql` binaries (`/usr/lib/postgresql/<major>/bin`; `.ci/run` installs the
package when they are missing) rather than a pip-installed server: the same packaged PostgreSQL a
team runs MLflow on. PostgreSQL refuses to run as root, so under root the server runs as the
`postgres` system user the package creates (`setpriv`, no shell and no intermediate process, so
the PID we hold is the postmaster's). Data directory and unix socket live in one temp folder;
durability is switched off because the data is thrown away.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import free_port

START_TIMEOUT = 60
PREFERRED_MAJOR = "15"  # the version DESIGN §6's Postgres facts were measured on
SYSTEM_USER = "postgres"
DB_USER = "mlflow"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine."""


class PostgresFailed(RuntimeError):
    """The binaries are there but the server would not start."""


def find_bin() -> Path | None:
    """The directory holding initdb and postgres: $RECONCILER_PG_BIN, else Debian's layout
    (version 15 first, then the newest installed)."""
    configured = os.environ.get("RECONCILER_PG_BIN")
    candidates = [Path(configured)] if configured else []
    root = Path("/usr/lib/postgresql")
    installed = sorted(
        (p for p in root.glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: (p.parent.name != PREFERRED_MAJOR, -int(p.parent.name)),
    )
    for directory in [*candidates, *installed]:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


@dataclass
class Postgres:
    bin: Path
    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    version: str

    def uri(self, database: str, driver: str = "") -> str:
        """A SQLAlchemy URI: driver "" (SQLAlchemy's default for `postgresql://`, psycopg v3 under
        SQLAlchemy 2.1) or e.g. "psycopg2"."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        _run([str(self.bin / "createdb"), *self._connect(), name], self._demote())

    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _connect(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER]

    def _demote(self) -> list[str]:
        return _demote_prefix()


def _demote_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid", SYSTEM_USER, "--regid", SYSTEM_USER, "--init-groups", "--"]


def _run(command: list[str], prefix: list[str]) -> None:
    result = subprocess.run(
        [*prefix, *command], capture_output=True, text=True, check=False, env=_env()
    )
    if result.returncode != 0:
        raise PostgresFailed(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")


def _env() -> dict[str, str]:
    # No PG* variables from the caller's environment leak into our server or tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def start_postgres() -> Postgres:
    """initdb in a fresh temp folder and start the server; return once it accepts connections."""
    bin_dir = find_bin()
    if bin_dir is None:
        raise PostgresUnavailable(
            "PostgreSQL binaries not found (install Debian's `postgresql` package, "
            "or set RECONCILER_PG_BIN to the directory holding initdb and postgres)"
        )
    prefix = _demote_prefix()
    if prefix:
        try:
            owner = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root, and there is no `{SYSTEM_USER}` user to run PostgreSQL as"
            ) from None
    # Not under pytest's tmp_path: that is private to root, and the server runs as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    if prefix:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    _run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust",
         "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
        prefix,
    )  # fmt: skip
    port = free_port()
    log = folder / "postgres.log"
    command = [
        str(bin_dir / "postgres"), "-D", str(data),
        "-h", "127.0.0.1", "-p", str(port), "-k", str(folder),
        # Throwaway data: no durability. Two mlflow servers with 4 workers and a pool each, plus
        # racing clients, need more than the default 100 connections.
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        "-c", "max_connections=300",
    ]  # fmt: skip
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [*prefix, *command], stdout=sink, stderr=subprocess.STDOUT, env=_env(),
            start_new_session=True,
        )  # fmt: skip
    version = bin_dir.parent.name
    server = Postgres(bin_dir, folder, port, process, version)
    deadline = time.monotonic() + START_TIMEOUT
    ready = [str(bin_dir / "pg_isready"), "-q", *server._connect(), "-d", "postgres"]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_postgres(server)
            raise PostgresFailed(f"postgres exited with {process.returncode}:\n{server.log()}")
        if subprocess.run(ready, check=False, env=_env()).returncode == 0:
            return server
        time.sleep(0.2)
    log_text = server.log()
    stop_postgres(server)
    raise PostgresFailed(f"postgres not ready after {START_TIMEOUT}s:\n{log_text}")


def stop_postgres(server: Postgres) -> None:
    """Fast shutdown (SIGINT: roll back open transactions, disconnect clients), then remove the
    data. The postmaster ends its own backends."""
    process = server.process
    try:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
    finally:
        shutil.rmtree(server.folder, ignore_errors=True)
