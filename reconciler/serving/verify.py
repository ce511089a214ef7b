"""Does what serves match what is pinned? The pure core of `reconciler verify`.

`targets` says what to poll (every pin in scope whose pin or environment has `serving:`), `judge`
says what one answer means, `more_telling` which of an endpoint's polls it reports, `Outcome` is
what the report shows. One GET is `http_get.py`, the threads and clocks `poller.py`; printing is
the CLI's. Whatever a backend says is scrubbed (redact: the `${VAR}` values verify read) before it
is cut short or shown.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from reconciler.pins.endpoints import Endpoint
from reconciler.pins.values import DesiredState
from reconciler.pins.versions import parse_version
from reconciler.redact import scrub


@dataclass(frozen=True)
class Target:
    """One pin whose serving is checked: `model` must serve `expected` in `environment`."""

    environment: str
    model: str
    expected: str
    endpoint: Endpoint
    source: str  # the file whose `serving:` applies, for messages
    pin_source: str | None = None  # the pin's `from:`: `expected` may be another registry's


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
        found.append(Target(pin.environment, pin.model, pin.version, endpoint, source, pin.source))
    return found


# How much an observation tells, for choosing what an endpoint reports among its polls: an answer
# (a version, an HTTP status, a body that is not what we need) beats "unreachable" (refused,
# reset, no such host), which beats no answer in time or a poll cut short (the last poll of an
# endpoint is given only what is left of its timeout).
ANSWERED = 2
UNREACHABLE = 1
NO_ANSWER = 0


@dataclass(frozen=True)
class Observation:
    """What one poll saw: the version served, or why none could be read; and the backend's own
    `reload_error` when its answer has one (the reference backend's: why it is not serving what
    the registry names)."""

    served: str | None = None
    error: str | None = None
    reload_error: str | None = None
    rank: int = ANSWERED

    def matches(self, expected: str) -> bool:
        # Both sides went through parse_version: equal text is equal version (7 and "7").
        return self.served is not None and self.served == expected


MAX_SHOWN = 40  # characters of a served value shown when it is not a version
MAX_RELOAD_ERROR = 300  # characters of a backend's reload_error shown
_NOT_JSON = object()


def judge(status: int, body: bytes, field: str) -> Observation:
    """One HTTP answer: a 2xx JSON document whose dotted `field` holds a version. The body of
    any status is read for the backend's `reload_error`."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        data = _NOT_JSON
    reload_error = _reload_error(data)
    if 300 <= status < 400:
        # Not followed: urllib would send our headers (a bearer token) wherever it points.
        return Observation(error=f"HTTP {status}: a redirect, not followed")
    if not 200 <= status < 300:
        return Observation(error=f"HTTP {status}", reload_error=reload_error)
    if data is _NOT_JSON:
        return Observation(error="the answer is not JSON")
    value = data
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return Observation(error=f"the answer has no field {field}", reload_error=reload_error)
        value = value[part]
    return replace(_version(value, field), reload_error=reload_error)


def _reload_error(data: Any) -> str | None:
    """A backend's `reload_error` (top level of its JSON answer), made one short line: it is
    the backend's text, shown in our report."""
    found = data.get("reload_error") if isinstance(data, dict) else None
    if not isinstance(found, str) or not found.strip():
        return None
    return _cut(scrub(_one_line(found.strip())), MAX_RELOAD_ERROR)


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
    # Scrubbed before it is cut: a secret the backend echoes must go whole, not leave a prefix.
    return _cut(scrub(json.dumps(value, ensure_ascii=False)), MAX_SHOWN)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def unreachable(reason: str) -> Observation:
    return Observation(error=f"unreachable: {reason}", rank=UNREACHABLE)


def no_answer(seconds: float) -> Observation:
    return Observation(error=f"unreachable: no answer within {seconds:.1f}s", rank=NO_ANSWER)


INTERRUPTED = Observation(error="interrupted before an answer", rank=NO_ANSWER)


def more_telling(new: Observation, best: Observation | None) -> bool:
    """Whether `new` should replace `best` as what an endpoint reports: the later of two
    observations that tell as much."""
    return best is None or new.rank >= best.rank


@dataclass(frozen=True)
class Outcome:
    """One endpoint after polling: the most telling observation of its polls, how long it took
    (to match, or until giving up), and whether a signal stopped it first."""

    target: Target
    url: str  # as it may be shown: no credentials, `${VAR}` unexpanded
    observation: Observation
    seconds: float
    polls: int
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.observation.matches(self.target.expected)

    def problem(self) -> str | None:
        """Why this endpoint fails, in one phrase (None when it serves its pin)."""
        if self.ok:
            return None
        found = self.observation.error or f"serves v{self.observation.served}"
        if self.observation.reload_error:
            found += f"; backend reload_error: {self.observation.reload_error}"
        return scrub(found)

    def record(self) -> dict[str, object]:
        return {
            "environment": self.target.environment,
            "model": self.target.model,
            "url": scrub(self.url),
            "expected_version": self.target.expected,
            "served_version": self.observation.served,
            "ok": self.ok,
            "error": self.problem(),
            "reload_error": None if self.ok else self.observation.reload_error,
            "seconds": round(self.seconds, 3),
            "polls": self.polls,
            "interrupted": self.interrupted,
        }


def all_ok(outcomes: Iterable[Outcome]) -> bool:
    return all(outcome.ok for outcome in outcomes)
