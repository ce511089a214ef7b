"""The gate that lets one process talk to several registries (issue 17): calls with the same
settings together, others in turn, the user's environment back when nobody holds it."""

from __future__ import annotations

import base64
import random
import threading
import time

import pytest

from reconciler.redact import scrub
from reconciler.registry.connection import (
    PASSWORD,
    TOKEN,
    TRACKING_URI,
    USERNAME,
    WORKSPACE,
    Connection,
    EnvironmentGate,
)

WAIT = 5.0


def _started(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_calls_with_the_same_settings_hold_the_gate_together() -> None:
    env: dict[str, str] = {}
    gate = EnvironmentGate(env)
    together = threading.Barrier(4, timeout=WAIT)  # breaks unless all four are inside at once
    seen: list[str | None] = []

    def call() -> None:
        with gate.holding({WORKSPACE: "team-a"}):
            together.wait()
            seen.append(env.get(WORKSPACE))

    threads = [_started(call) for _ in range(4)]
    for thread in threads:
        thread.join(WAIT)
    assert seen == ["team-a"] * 4
    assert env == {}


def test_other_settings_wait_for_the_holders_then_switch_and_the_user_environment_returns() -> None:
    env = {USERNAME: "user", PASSWORD: "user-pw", "UNRELATED": "kept"}
    gate = EnvironmentGate(env)
    a_inside, a_may_leave = threading.Event(), threading.Event()
    b_saw: list[dict[str, str]] = []

    def a() -> None:
        with gate.holding({USERNAME: "a", PASSWORD: "a-pw"}):
            a_inside.set()
            a_may_leave.wait(WAIT)

    def b() -> None:
        with gate.holding({USERNAME: "b", PASSWORD: None, WORKSPACE: "ws-b"}):
            b_saw.append(dict(env))

    first = _started(a)
    assert a_inside.wait(WAIT)
    second = _started(b)
    time.sleep(0.2)
    assert b_saw == []  # still waiting: A holds the gate
    assert env == {USERNAME: "a", PASSWORD: "a-pw", "UNRELATED": "kept"}
    a_may_leave.set()
    first.join(WAIT)
    second.join(WAIT)
    assert b_saw == [{USERNAME: "b", WORKSPACE: "ws-b", "UNRELATED": "kept"}]
    assert env == {USERNAME: "user", PASSWORD: "user-pw", "UNRELATED": "kept"}


def test_a_call_inside_a_call_enters_at_once_even_with_others_waiting() -> None:
    env: dict[str, str] = {}
    gate = EnvironmentGate(env)
    other_waiting = threading.Event()
    order: list[str] = []

    def other() -> None:
        other_waiting.set()
        with gate.holding({WORKSPACE: "b"}):
            order.append("b")

    with gate.holding({WORKSPACE: "a"}):
        waiter = _started(other)
        assert other_waiting.wait(WAIT)
        time.sleep(0.1)  # B is queued now
        with gate.holding({WORKSPACE: "a"}):  # would deadlock if it queued behind B
            order.append("inner a")
            assert env == {WORKSPACE: "a"}
        assert env == {WORKSPACE: "a"}  # the outer call still holds its settings
    waiter.join(WAIT)
    assert order == ["inner a", "b"]
    assert env == {}


def test_a_call_to_another_registry_inside_a_call_is_refused_not_a_deadlock() -> None:
    env = {WORKSPACE: "user's"}
    gate = EnvironmentGate(env)
    with gate.holding({WORKSPACE: "a"}):
        refused = pytest.raises(RuntimeError, match="inside a call to another")
        with refused, gate.holding({WORKSPACE: "b"}):
            pass
        assert env == {WORKSPACE: "a"}
    assert env == {WORKSPACE: "user's"}


def test_an_exception_inside_gives_the_environment_back_and_frees_the_gate() -> None:
    env = {TOKEN: "user-token"}
    gate = EnvironmentGate(env)
    with pytest.raises(ValueError, match="boom"), gate.holding({TOKEN: "a-token"}):
        raise ValueError("boom")
    assert env == {TOKEN: "user-token"}
    entered = threading.Event()

    def other() -> None:
        with gate.holding({TOKEN: None}):
            entered.set()

    _started(other).join(WAIT)
    assert entered.is_set()  # nobody holds the gate any more
    assert env == {TOKEN: "user-token"}


def test_a_stream_of_calls_to_one_registry_does_not_starve_another() -> None:
    env: dict[str, str] = {}
    gate = EnvironmentGate(env)
    a_inside, a_may_leave, b_queued = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def a_first() -> None:
        with gate.holding({WORKSPACE: "a"}):
            a_inside.set()
            a_may_leave.wait(WAIT)
            order.append("a first")

    def b() -> None:
        b_queued.set()
        with gate.holding({WORKSPACE: "b"}):
            order.append("b")

    def a_later() -> None:
        with gate.holding({WORKSPACE: "a"}):
            order.append("a later")

    threads = [_started(a_first)]
    assert a_inside.wait(WAIT)
    threads.append(_started(b))
    assert b_queued.wait(WAIT)
    time.sleep(0.1)
    threads.append(_started(a_later))  # same settings as the holder, but B asked first
    time.sleep(0.1)
    assert order == []
    a_may_leave.set()
    for thread in threads:
        thread.join(WAIT)
    assert order == ["a first", "b", "a later"]


def test_many_threads_on_two_registries_each_see_only_their_own_settings() -> None:
    env = {USERNAME: "command", PASSWORD: "command-pw"}
    before = dict(env)
    gate = EnvironmentGate(env)
    a: dict[str, str | None] = {USERNAME: "a", PASSWORD: "a-pw", WORKSPACE: None}
    b: dict[str, str | None] = {USERNAME: "b", PASSWORD: "b-pw", WORKSPACE: "team-b"}
    wrong: list[str] = []
    inside = {"a": 0, "b": 0}
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            name, settings = rng.choice([("a", a), ("b", b)])
            with gate.holding(settings):
                with lock:
                    inside[name] += 1
                    other = "b" if name == "a" else "a"
                    if inside[other]:
                        wrong.append(f"{name} ran while {other} held the gate")
                for key, value in settings.items():
                    if env.get(key) != value:
                        wrong.append(f"{name}: {key}={env.get(key)!r}")
                time.sleep(rng.random() / 10_000)
                with lock:
                    inside[name] -= 1

    threads = [_started(lambda s=seed: worker(s)) for seed in range(8)]
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []
    assert env == before


def test_a_connection_never_shows_its_secrets_and_registers_them_for_scrubbing() -> None:
    connection = Connection(
        "http://127.0.0.1:5000", "alice", "alice-Pa55-unique-0", "tok-unique-0", configured=True
    )
    shown = repr(connection)
    for secret in ("alice", "Pa55", "tok-unique"):
        assert secret not in shown
    assert "http://127.0.0.1:5000" in shown
    connection.register_secrets()
    basic = base64.b64encode(b"alice:alice-Pa55-unique-0").decode()
    assert scrub(f"pw alice-Pa55-unique-0 tok tok-unique-0 hdr Basic {basic}") == (
        "pw *** tok *** hdr Basic ***"
    )


def test_the_commands_registry_changes_only_its_chosen_workspace() -> None:
    assert Connection().settings(None) == {}
    assert Connection("http://h").settings("team-a") == {WORKSPACE: "team-a"}


def test_a_configured_registry_sends_only_its_own_values() -> None:
    settings = Connection("http://h:1", "u", "p", configured=True).settings(None)
    assert (settings[USERNAME], settings[PASSWORD]) == ("u", "p")
    # The command's token, workspace and auth plugin: unset for its calls.
    assert (settings[TOKEN], settings[WORKSPACE], settings["MLFLOW_TRACKING_AUTH"]) == (None,) * 3
    assert settings[TRACKING_URI] == "http://h:1"
    assert Connection("http://h:1", token="t", configured=True).settings("ws")[WORKSPACE] == "ws"


def test_while_switched_the_users_own_secrets_are_still_scrubbed() -> None:
    env = {USERNAME: "bob", PASSWORD: "bob-Secret-unique-1"}
    gate = EnvironmentGate(env)
    with gate.holding({USERNAME: None, PASSWORD: None}):
        assert scrub("leaked bob-Secret-unique-1") == "leaked ***"
