"""The one error hierarchy: every expected failure carries a user message and an exit code.

The CLI prints `str(error)` on one line (per problem) and exits with `exit_code`; anything that is
not a `ReconcilerError` is a bug and exits 3 (pre-commit's convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_ERROR = 1
EXIT_CHANGES_PENDING = 2  # `plan --detailed-exitcode`, Terraform's convention
EXIT_BUG = 3
EXIT_OUT_OF_ORDER = 4  # apply refused: an older commit than the one last applied
EXIT_NOT_OWNER = 5  # apply refused: another repository owns the model there (--take-ownership)
EXIT_USAGE = 64  # the command line itself is wrong (sysexits.h EX_USAGE); never 2
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2, the shell's convention
EXIT_SIGTERM = 143  # SIGTERM (CI cancelling a job): 128 + 15
EXIT_SIGHUP = 129  # SIGHUP (the terminal or ssh session went away): 128 + 1


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input, located precisely: `file:line: field: message`."""

    file: str
    line: int | None
    field: str | None
    message: str

    def sort_key(self) -> tuple[str, int, str, str]:
        """By file, then line (file-wide problems first), field and message: None never meets
        a value in a comparison."""
        return (self.file, -1 if self.line is None else self.line, self.field or "", self.message)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f"{self.field}: {self.message}" if self.field else self.message
        # One problem, one line: keys and values from the file may hold newlines or other
        # control characters; show them escaped.
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in f"{where}: {what}")


class ReconcilerError(Exception):
    """An expected failure: shown to the user as one line, never with a traceback."""

    exit_code = EXIT_ERROR


class StoppedBeforeWriting(ReconcilerError):
    """A signal stopped a command while it still only read (the registries, before any lease):
    nothing to finish, nothing written; it exits at once with the signal's code."""

    def __init__(self, signal_name: str | None, doing: str) -> None:
        name = signal_name or "SIGINT"
        super().__init__(f"{name}: stopped while {doing}; nothing was changed")
        codes = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_SIGTERM, "SIGHUP": EXIT_SIGHUP}
        self.exit_code = codes.get(name, EXIT_INTERRUPTED)


class Reported(ReconcilerError):
    """A failure whose report the command printed already (apply's results, verify's report):
    the CLI's exit path says `message` on stderr, if any, and exits with `exit_code`, with no
    second document on stdout."""

    def __init__(self, message: str | None, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message or "")
        self.message = message
        self.exit_code = exit_code


class InvalidInput(ReconcilerError):
    """Pins or settings failed validation, or the plan found pins the registry cannot satisfy."""

    # What the command did not do because of them, for the closing line.
    consequence = "nothing was changed in the registry."

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=Problem.sort_key))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(ReconcilerError):
    """The command line asks for something that cannot be done (e.g. no environments/ folder)."""


class MissingVariable(InvalidInput):
    """A `${VAR}` in a `serving:` endpoint names an environment variable that is not set (one
    problem, at the line of the field that uses it). Checked before any poll, and by `apply
    --verify` after the apply: the registry may have changed, the endpoints were not asked."""

    consequence = "no endpoint was polled."


class UnsendableVariable(InvalidInput):
    """A `${VAR}` in a `serving:` endpoint holds what no request can carry where it is used (a
    newline in a header value, a space in a URL). The message names the variable, never its
    value."""

    consequence = "no endpoint was polled."


class RegistryError(ReconcilerError):
    """The registry refused or failed a request."""


class CopyStopped(ReconcilerError):
    """A signal asked the apply to stop while it copied a version between registries: the copy
    stopped at its next file (nothing half-made is registered; an unfinished upload is deleted,
    now or by the next copy of that version). Apply reports the stop like any other (exit
    130/143/129), not as a failure."""


class RegistryUnreachable(RegistryError):
    """No answer from the registry (connection refused, DNS, timeout)."""


class RegistryAuthError(RegistryError):
    """The registry rejected our credentials (401) or our permissions (403)."""


class RegistryPermissionDenied(RegistryAuthError):
    """Authenticated, but not allowed to do this (HTTP 403)."""


class OutOfOrder(ReconcilerError):
    """The commit being applied does not descend from the one last applied (fencing)."""

    exit_code = EXIT_OUT_OF_ORDER


class NotOwner(ReconcilerError):
    """Another repository owns the model in that environment: only `--take-ownership` (never
    `--force`) lets this one change it."""

    exit_code = EXIT_NOT_OWNER


class StateUnreadable(ReconcilerError):
    """A model's `reconciler.state` tag has a shape this version cannot trust (a hand edit, a
    truncated write, a newer reconciler): its fence, ownership and lease cannot be judged."""


class ShallowClone(ReconcilerError):
    """The clone lacks history a command needs (fetch it: `git fetch --unshallow`)."""


class UncommittedChanges(ReconcilerError):
    """`apply` refused: environments/ differs from HEAD (or there is no commit to apply)."""


class RetireRefused(ReconcilerError):
    """Prune safety: the plan would empty an environment or retire more than its limit."""


class PlanChanged(ReconcilerError):
    """`apply --expect-plan`: the plan computed now is not the one that was reviewed."""


class ApplyFailed(ReconcilerError):
    """Some changes were applied and one failed; the results say which."""
