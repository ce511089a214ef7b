"""Shared fixtures: a guard against real defaults, repositories in temp dirs, the CLI runner."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import AppContext, cli
from reconciler.registry.base import Registry
from reconciler.registry.fake import FakeRegistry
from tests.support.scheduling import FileOrPostgresScheduling, order_longest_first

# Port 9 (discard) on loopback: a test that reaches for a registry it was not given fails fast.
UNREACHABLE_URI = "http://127.0.0.1:9"


# Parallel runs: what is one unit of work, and longest first (tests/support/scheduling.py).
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    order_longest_first(items)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") == "loadfile":
        return FileOrPostgresScheduling(config, log)
    return None


@pytest.fixture(autouse=True)
def _guard_real_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test may touch the developer's registry, credentials or home directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE_URI)
    for name in (
        "MLFLOW_REGISTRY_URI",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
        "GITHUB_ACTIONS",
    ):
        monkeypatch.delenv(name, raising=False)
    # MLFLOW_WORKSPACE: recorded first, so a test (or an adapter call interrupted between the
    # gate's switch and its restore) can never leave it set for the next test.
    monkeypatch.setenv("MLFLOW_WORKSPACE", "")
    monkeypatch.delenv("MLFLOW_WORKSPACE")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Author")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "author@example.invalid")


class Repo:
    """A real git repository in a temp dir holding environments/ (pins and settings)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, date: str | None = None) -> str:
        env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else None
        return subprocess.run(
            ["git", *args], cwd=self.root, check=True, capture_output=True, text=True, env=env
        ).stdout

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def pin(self, env: str, model: str, version: int | str, **extra: str) -> Path:
        lines = [f"model: {model}", f"version: {version}"]
        lines += [f"{key}: {value}" for key, value in extra.items()]
        return self.write(f"environments/{env}/{model}.yaml", "\n".join(lines) + "\n")

    def commit(self, message: str, date: str | None = None) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, date=date)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


RunCli = Callable[..., Result]


def commit_pins(root: Path) -> None:
    """Commit whatever the test wrote under environments/ (and make a first commit if there is
    none), as a team's CI sees its pins: `apply` refuses an uncommitted environments/."""
    if not (root / ".git").exists():
        return

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, check=True, capture_output=True, text=True
        ).stdout

    has_head = subprocess.run(["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=root,
                              capture_output=True).returncode == 0  # fmt: skip
    if git("status", "--porcelain", "--", "environments"):
        git("add", "-A", "--", "environments")
        git("commit", "-q", "-m", "test: the pins as written", "--", "environments")
    elif not has_head:
        git("commit", "-q", "--allow-empty", "-m", "test: first commit")


def make_runner(
    root: Path,
    registry: Registry | None = None,
    tracking_uri: str | None = None,
    lease_settle: float = 0.0,
    lease_ttl: float | None = None,
    commit_before_apply: bool = True,
) -> RunCli:
    """The CLI against `root`. Before `apply`, what the test wrote under environments/ is
    committed (`commit_before_apply`), as in a team's repository; tests of the dirty-tree refusal
    turn that off."""
    prefix = ["--tracking-uri", tracking_uri] if tracking_uri else []

    def run(*args: str) -> Result:
        if commit_before_apply and "apply" in args:
            commit_pins(root)
        obj = AppContext(root=root, lease_settle=lease_settle)
        if lease_ttl is not None:
            obj.lease_ttl = lease_ttl
        if registry is not None:
            obj.registry_factory = lambda _uri: registry
        return CliRunner().invoke(cli, [*prefix, *args], obj=obj, catch_exceptions=False)

    return run


def recorded_commit(registry: Registry, model: str, environment: str) -> str | None:
    """The applied commit apply recorded for `model` in `environment` (its state tag)."""
    from reconciler.records.bookkeeping import applied_commit

    found = registry.read_model(model)
    return applied_commit(found, environment)


def recorded_owner(registry: Registry, model: str, environment: str) -> str | None:
    """The repository recorded as managing `model` in `environment`."""
    from reconciler.records.bookkeeping import owner

    found = registry.read_model(model)
    return owner(found, environment)


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def run(repo: Repo, fake: FakeRegistry) -> RunCli:
    """The CLI against `repo` and the fake registry."""
    return make_runner(repo.root, fake)
