"""Polls serving endpoints until each serves its pinned version or its time is up (the I/O of
`reconciler verify`). One thread per endpoint: a slow backend never delays the others.

Redirects are not followed: urllib would send our headers (a bearer token) to wherever the
redirect points. Answers are read up to MAX_BODY bytes.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reconciler.pins.endpoints import Request
from reconciler.redact import scrub
from reconciler.serving.verify import Observation, Outcome, Target, judge, unreachable

REQUEST_TIMEOUT = 10.0  # seconds for one poll, at most (never past the endpoint's deadline)
MAX_BODY = 1024 * 1024
MAX_THREADS = 64  # threads mostly sleep between polls


@dataclass(frozen=True)
class Job:
    target: Target
    request: Request
    timeout: float  # seconds
    interval: float  # seconds


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(request: Request, field: str, timeout: float) -> Observation:
    """One GET, judged. Every failure becomes an Observation; secrets are scrubbed from it."""
    observation = _fetch(request, field, timeout)
    if observation.error:
        return Observation(observation.served, scrub(observation.error, request.secrets))
    return observation


def _fetch(request: Request, field: str, timeout: float) -> Observation:
    http_request = urllib.request.Request(
        request.url, headers={"Accept": "application/json", **request.headers}, method="GET"
    )
    try:
        with _OPENER.open(http_request, timeout=timeout) as response:
            return judge(response.status, response.read(MAX_BODY), field)
    except urllib.error.HTTPError as error:
        error.close()
        return judge(error.code, b"", field)
    except urllib.error.URLError as error:
        return unreachable(str(error.reason))
    except TimeoutError:
        return unreachable(f"no answer within {timeout:g}s")
    except (OSError, http.client.HTTPException) as error:
        return unreachable(f"{type(error).__name__}: {error}")


def poll(
    job: Job,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    start: float | None = None,
) -> Outcome:
    """Poll until the endpoint serves the pin, the job's timeout (counted from `start`, default
    now) passes, or `stop` is set. At least one poll, however late it starts."""
    start = clock() if start is None else start
    deadline = start + job.timeout
    polls = 0
    while True:
        polls += 1
        observation = fetch(
            job.request,
            job.target.endpoint.version_field,
            max(min(REQUEST_TIMEOUT, deadline - clock()), 0.5),
        )
        remaining = deadline - clock()
        if observation.matches(job.target.expected) or remaining <= 0:
            break
        # The last poll falls on the deadline, so `timeout` is waited in full.
        if stop.wait(min(job.interval, remaining)):
            break
    return Outcome(job.target, job.request.shown_url, observation, clock() - start, polls)


def poll_all(jobs: Sequence[Job]) -> list[Outcome]:
    """Every job polled concurrently; outcomes in the jobs' order. Ctrl-C stops every poll."""
    if not jobs:
        return []
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(jobs)))
    # One clock for all: an endpoint queued behind busy threads does not get extra time.
    start = time.monotonic()
    try:
        futures = [pool.submit(poll, job, stop, time.monotonic, start) for job in jobs]
        return [future.result() for future in futures]
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
