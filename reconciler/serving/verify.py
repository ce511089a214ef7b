"""Does what serves match what is pinned? The pure core of `reconciler verify`.

`targets` says what to poll (every pin in scope whose pin or environment has `serving:`), `judge`
says what one answer means, `Outcome` is what the report shows. The polling itself (HTTP, threads,
clocks) is `poller.py`; printing is the CLI's.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.pins.endpoints import Endpoint
from reconciler.pins.values import DesiredState
from reconciler.pins.versions import parse_version


@dataclass(frozen=True)
class Target:
    """One pin whose serving is checked: `model` must serve `expected` in `environment`."""

    environment: str
    model: str
    expected: str
    endpoint: Endpoint
    source: str  # the file whose `serving:` applies, for messages


def targets(
    desired: DesiredState,
    environments: Collection[str] = (),
    models: Collection[str] = (),
    only: Collection[tuple[str, str]] | None = None,
) -> list[Target]:
    """The pins to verify, in report order. `only` narrows to (environment, model) pairs, e.g.
    those an apply changed."""
    found = []
    for pin in desired.pins:
        if environments and pin.environment not in environments:
            continue
        if models and pin.model not in models:
            continue
        if only is not None and (pin.environment, pin.model) not in only:
            continue
        env = desired.environments.get(pin.environment)
        endpoint = pin.serving or (env.serving if env else None)
        if endpoint is None:
            continue
        source = pin.file if pin.serving else (env.settings_file if env else None) or pin.file
        found.append(Target(pin.environment, pin.model, pin.version, endpoint, source))
    return found


@dataclass(frozen=True)
class Observation:
    """What one poll saw: the version served, or why none could be read."""

    served: str | None = None
    error: str | None = None

    def matches(self, expected: str) -> bool:
        # Both sides went through parse_version: equal text is equal version (7 and "7").
        return self.served is not None and self.served == expected


MAX_SHOWN = 40  # characters of a served value shown when it is not a version


def judge(status: int, body: bytes, field: str) -> Observation:
    """One HTTP answer: a 2xx JSON document whose dotted `field` holds a version."""
    if not 200 <= status < 300:
        return Observation(error=f"HTTP {status}")
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return Observation(error="the answer is not JSON")
    value = data
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return Observation(error=f"the answer has no field {field}")
        value = value[part]
    return _version(value, field)


def _version(value: object, field: str) -> Observation:
    # A backend's answer is exact: " 3" is not what a correct server says (pins may be padded,
    # their text is a person's; this is a program's).
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or str(value) != str(value).strip()
    ):
        return Observation(error=f"{field} is {_show(value)}, not a version")
    try:
        return Observation(served=parse_version(str(value)))
    except ValueError:
        return Observation(error=f"{field} is {_show(value)}, not a version")


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def unreachable(reason: str) -> Observation:
    return Observation(error=f"unreachable: {reason}")


@dataclass(frozen=True)
class Outcome:
    """One endpoint after polling: the last observation, and how long it took (to match, or
    until giving up)."""

    target: Target
    url: str  # as it may be shown: no credentials, `${VAR}` unexpanded
    observation: Observation
    seconds: float
    polls: int

    @property
    def ok(self) -> bool:
        return self.observation.matches(self.target.expected)

    def problem(self) -> str | None:
        """Why this endpoint fails, in one phrase (None when it serves its pin)."""
        if self.ok:
            return None
        if self.observation.error:
            return self.observation.error
        return f"serves v{self.observation.served}"

    def record(self) -> dict[str, object]:
        return {
            "environment": self.target.environment,
            "model": self.target.model,
            "url": self.url,
            "expected_version": self.target.expected,
            "served_version": self.observation.served,
            "ok": self.ok,
            "error": self.problem(),
            "seconds": round(self.seconds, 3),
            "polls": self.polls,
        }


def all_ok(outcomes: Iterable[Outcome]) -> bool:
    return all(outcome.ok for outcome in outcomes)
