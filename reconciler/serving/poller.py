"""Polls serving endpoints until each serves its pinned version or its time is up (the I/O of
`reconciler verify`). Up to MAX_THREADS threads take endpoints from one queue, so a slow backend
never delays the others.

The main thread never blocks on a poll. It waits in short ticks, and at each it cuts off every
poll past its deadline (a server trickling its answer a byte at a time is not waited on past the
timeout: `http_get.Cut`), notices `stop` (a signal handler set it) and then cuts every poll and
reports at once, and gives up on an endpoint whose thread is stuck where nothing can cut it
(a name lookup) once its time is over. The polling threads block the stopping signals, so the
kernel hands them to the main thread: a signal taken by a polling thread would wait, unhandled,
until the main thread next ran Python code (the Ctrl-C that "was ignored").
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from reconciler.pins.endpoints import Request
from reconciler.serving.http_get import Cut, fetch
from reconciler.serving.verify import (
    INTERRUPTED,
    Observation,
    Outcome,
    Target,
    more_telling,
    no_answer,
)

REQUEST_TIMEOUT = 10.0  # seconds for one poll, at most (never past the endpoint's deadline)
MIN_BUDGET = 0.5  # seconds a poll gets however late it starts (`--timeout 0` is one poll)
TICK = 0.1  # seconds between two looks of the main thread at the polls
GRACE = 2.0  # seconds past its deadline a stuck thread is waited for before it is given up
MAX_THREADS = 64  # endpoints polled at once; threads mostly sleep between polls
STOPPING_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@dataclass(frozen=True)
class Job:
    target: Target
    request: Request
    timeout: float  # seconds
    interval: float  # seconds


class Progress:
    """One endpoint's polls so far, shared by the thread polling it (which writes) and the main
    thread (which cuts the poll in flight, may give up on it, and reports)."""

    def __init__(self, job: Job, start: float) -> None:
        self.job = job
        self.start = start
        self.deadline = start + job.timeout
        self._lock = threading.Lock()
        self.polls = 0
        self.best: Observation | None = None
        self.cut: Cut | None = None  # the poll in flight
        self.ended: float | None = None  # when it was done with (by its thread or given up)
        self.failure: BaseException | None = None  # a bug in its thread, raised by poll_all

    def begin(self, budget: float) -> Cut:
        with self._lock:
            self.cut = Cut(budget)
            return self.cut

    def record(self, observation: Observation) -> None:
        with self._lock:
            if self.ended is not None:
                return  # given up already: the report has what it had then
            self.polls += 1
            self.cut = None
            if more_telling(observation, self.best):
                self.best = observation

    def end(self, when: float, failure: BaseException | None = None) -> None:
        with self._lock:
            if self.ended is None:
                self.ended = when
            self.failure = failure

    def watch(self, now: float) -> bool:
        """Cut the poll in flight once past its deadline; give up on it when its thread is
        still stuck a GRACE later. True while the endpoint is not done with."""
        with self._lock:
            if self.ended is not None:
                return False
            cut = self.cut
            if cut is not None and now >= cut.deadline + GRACE:
                self.polls += 1
                if more_telling(no_answer(cut.budget), self.best):
                    self.best = no_answer(cut.budget)
                self.ended = now
                return False
        if cut is not None and now >= cut.deadline:
            cut.now()
        return True

    def interrupt(self) -> None:
        with self._lock:
            cut = self.cut
        if cut is not None:
            cut.now(interrupted=True)

    def outcome(self, now: float, interrupted: bool) -> Outcome:
        with self._lock:
            best = self.best or INTERRUPTED
            ended = self.ended
            polls = self.polls
        job = self.job
        return Outcome(
            job.target,
            job.request.shown_url,
            best,
            (ended if ended is not None else now) - self.start,
            polls,
            interrupted=ended is None and interrupted,
        )


def poll(
    progress: Progress,
    halt: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll until the endpoint serves the pin, its deadline passes, or `halt` is set. At least
    one poll, however late it starts. The last poll falls on the deadline, so the timeout is
    waited in full."""
    job = progress.job
    while True:
        budget = max(min(REQUEST_TIMEOUT, progress.deadline - clock()), MIN_BUDGET)
        cut = progress.begin(budget)
        observation = fetch(job.request, job.target.endpoint.version_field, cut)
        progress.record(observation)
        remaining = progress.deadline - clock()
        if observation.matches(job.target.expected) or remaining <= 0 or halt.is_set():
            break
        if halt.wait(min(job.interval, remaining)):
            break


def _work(take: Callable[[], Progress | None], halt: threading.Event) -> None:
    """One polling thread: endpoint after endpoint from the shared queue until none is left."""
    while (progress := take()) is not None:
        failure: BaseException | None = None
        try:
            if not halt.is_set():
                poll(progress, halt)
        except BaseException as error:  # a bug: poll_all raises it in the main thread
            failure = error
        progress.end(time.monotonic(), failure)


def poll_all(jobs: Sequence[Job], stop: threading.Event | None = None) -> list[Outcome]:
    """Every job polled concurrently; outcomes in the jobs' order. When `stop` is set (a signal
    handler sets it), every poll is cut off and the outcomes say what each endpoint answered
    until then, unfinished ones marked interrupted."""
    if not jobs:
        return []
    stop = stop or threading.Event()
    halt = threading.Event()  # tells the polling threads to end
    # One clock for all: an endpoint queued behind busy threads does not get extra time.
    start = time.monotonic()
    progresses = [Progress(job, start) for job in jobs]
    take = _taker(progresses)
    threads = [
        # daemon: a thread stuck in a name lookup never holds the process at exit
        threading.Thread(target=_work, args=(take, halt), name=f"verify-{i}", daemon=True)
        for i in range(min(MAX_THREADS, len(jobs)))
    ]
    try:
        with _signals_for_the_main_thread():
            for thread in threads:
                thread.start()
        while not stop.is_set():
            now = time.monotonic()
            busy = [progress for progress in progresses if progress.watch(now)]
            if not busy:
                break
            # A timed wait: the main thread runs Python code every tick, so a signal's handler
            # runs within a tick even when another thread took the signal.
            stop.wait(TICK)
        # Taken before the threads are told to end: one that ends now was stopped, not done.
        now, interrupted = time.monotonic(), stop.is_set()
        outcomes = [progress.outcome(now, interrupted) for progress in progresses]
    finally:
        halt.set()
        for progress in progresses:
            progress.interrupt()
    for progress in progresses:
        if progress.failure is not None:
            raise progress.failure
    return outcomes


def _taker(items: list[Progress]) -> Callable[[], Progress | None]:
    """A queue several threads take from, each item once (None when empty)."""
    lock = threading.Lock()
    remaining = iter(items)

    def take() -> Progress | None:
        with lock:
            return next(remaining, None)

    return take


@contextmanager
def _signals_for_the_main_thread() -> Iterator[None]:
    """Threads started inside inherit a mask blocking the stopping signals (POSIX)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
