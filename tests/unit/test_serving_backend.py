"""The reference backend's reload rule on its real HTTP server: a new version is served only once
it is fully loaded; a failed load or an unreachable registry keeps the old one serving. The
registry here is a small stand-in for the two MlflowClient reads the backend makes (the real
server is in tests/integration/test_serving.py)."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from serving.app import make_server, parse_args
from serving.follower import Follower


@dataclass
class Version:
    version: str
    run_id: str


class Registry:
    """Answers `get_latest_versions` and `get_model_version_by_alias` from `self.names`."""

    def __init__(self) -> None:
        self.version: str | None = "1"
        self.error: Exception | None = None

    def get_latest_versions(self, name: str, stages: list[str]) -> list[Version]:
        if self.error:
            raise self.error
        return [Version(self.version, f"run-{self.version}")] if self.version else []

    def get_model_version_by_alias(self, name: str, alias: str) -> Version:
        if self.error:
            raise self.error
        if self.version is None:
            raise RuntimeError(f"RESOURCE_DOES_NOT_EXIST: alias {alias} not found")
        return Version(self.version, f"run-{self.version}")


class Model:
    def __init__(self, version: str) -> None:
        self.version = version

    def predict(self, rows: Any) -> list[str]:
        return [self.version] * len(rows)


class SlowLoader:
    """Loads a model only when the test lets it: a load in progress can be observed."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def __call__(self, uri: str) -> Model:
        self.started.set()
        assert self.release.wait(30), "the test never released the load"
        if self.fail:
            raise OSError(f"cannot download {uri} from https://user:s3cret@store.example/")
        return Model(uri.rsplit("/", 1)[1])


@dataclass
class Running:
    registry: Registry
    loader: SlowLoader
    follower: Follower
    url: str

    def health(self) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


@pytest.fixture
def running() -> Iterator[Running]:
    registry, loader = Registry(), SlowLoader()
    follower = Follower(registry, "churn", stage="Production", load=loader, log=lambda _: None)
    server = make_server(follower, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Running(registry, loader, follower, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        loader.release.set()
        server.shutdown()
        server.server_close()


def refresh_in_background(follower: Follower) -> threading.Thread:
    thread = threading.Thread(target=follower.refresh)
    thread.start()
    return thread


def test_a_version_serves_only_once_fully_loaded(running: Running) -> None:
    first = refresh_in_background(running.follower)
    assert running.loader.started.wait(30)
    status, health = running.health()
    assert (status, health["status"], health["version"]) == (503, "loading", None)
    running.loader.release.set()
    first.join(30)
    assert running.health() == (
        200,
        {
            "status": "ok",
            "model": "churn",
            "stage": "Production",
            "version": "1",
            "run_id": "run-1",
        },
    )

    # The stage moves to v2: while v2 loads, v1 answers; then v2 does.
    running.loader.started.clear()
    running.loader.release.clear()
    running.registry.version = "2"
    second = refresh_in_background(running.follower)
    assert running.loader.started.wait(30)
    assert running.health()[1]["version"] == "1"
    running.loader.release.set()
    second.join(30)
    assert running.health()[1]["version"] == "2"
    assert running.health()[1]["run_id"] == "run-2"


def test_a_failed_load_keeps_the_old_version_and_says_why(running: Running) -> None:
    running.loader.release.set()
    running.follower.refresh()
    running.registry.version = "2"
    running.loader.fail = True
    stop = threading.Event()
    stop.set()  # one round only
    running.follower.follow(stop, 0.01)
    status, health = running.health()
    assert status == 200
    assert health["version"] == "1"
    assert health["reload_error"].startswith("OSError: cannot download models:/churn/2")
    assert "s3cret" not in health["reload_error"]
    assert "https://***@store.example/" in health["reload_error"]
    # The registry unreachable: still v1.
    running.registry.error = ConnectionError("registry down")
    running.follower.follow(stop, 0.01)
    assert running.health()[1]["version"] == "1"
    assert running.health()[1]["reload_error"] == "ConnectionError: registry down"
    # Back, and the load works: v2.
    running.registry.error = None
    running.loader.fail = False
    running.follower.follow(stop, 0.01)
    assert running.health()[1]["version"] == "2"
    assert "reload_error" not in running.health()[1]


@pytest.mark.parametrize("follows", ["stage", "alias"])
def test_a_stage_that_names_no_version_stops_serving_and_says_why(
    running: Running, follows: str
) -> None:
    """The model retired (its stage emptied, its alias removed): answering 200 and predicting
    with the version nobody pins any more would hide it. 503 with the reason, until the stage
    names a version again."""
    if follows == "alias":
        running.follower.stage, running.follower.alias = None, "champion"
    running.loader.release.set()
    running.follower.refresh()
    assert running.health()[0] == 200
    running.registry.version = None
    assert running.follower.refresh() is False
    status, health = running.health()
    where = "churn/Production" if follows == "stage" else "churn@champion"
    assert (status, health["status"], health["version"]) == (503, "no version", None)
    assert health["reload_error"] == f"{where} names no version"
    rows = json.dumps([{"x": 1.0}]).encode()
    assert post(running.url, "/predict", rows, {"Content-Length": str(len(rows))}) == (
        503,
        {"error": f"{where} names no version"},
    )
    running.registry.version = "3"
    assert running.follower.refresh() is True
    status, health = running.health()
    assert (status, health["version"]) == (200, "3")
    assert "reload_error" not in health


def test_command_line() -> None:
    args = parse_args(["--model", "m", "--alias", "champion", "--port", "0"])
    assert (args.host, args.interval, args.stage, args.alias) == (
        "127.0.0.1",
        10.0,
        None,
        "champion",
    )
    with pytest.raises(SystemExit):
        parse_args(["--model", "m", "--stage", "Production", "--alias", "a", "--port", "1"])
    with pytest.raises(SystemExit):
        parse_args(["--model", "m", "--port", "1"])
    with pytest.raises(SystemExit):
        parse_args(["--model", "m", "--stage", "Production", "--port", "1", "--interval", "0"])
    with pytest.raises(ValueError, match="exactly one"):
        Follower(Registry(), "m")


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_predict_uses_one_model_and_refuses_what_it_cannot_read(running: Running) -> None:
    running.loader.release.set()
    running.follower.refresh()
    rows = json.dumps([{"x": 1.0}, {"x": 2.0}]).encode()
    length = {"Content-Length": str(len(rows))}
    assert post(running.url, "/predict", rows, length) == (
        200,
        {"model": "churn", "version": "1", "predictions": ["1", "1"]},
    )
    assert post(running.url, "/predict", b"", {"Content-Length": "-5"})[0] == 400
    assert post(running.url, "/predict", b"", {"Content-Length": "lots"})[0] == 400
    status, answer = post(running.url, "/predict", b"[]", {"Content-Length": "2"})
    assert status == 400
    assert "non-empty JSON list" in answer["error"]
    assert post(running.url, "/elsewhere", rows, length)[0] == 404
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{running.url}/", timeout=5)
    assert error.value.code == 404
    error.value.close()
