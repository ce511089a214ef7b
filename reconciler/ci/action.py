"""The composite action's one command (action.yml, input `command`): which `reconciler` command
line it means, where its output goes, and the step outputs read from it.

stdout of the command is its document (the plan's markdown, apply's records, verify's report) and
goes to a file under `out_dir`; stderr goes to the job log as it comes and to `errors.txt` (the
pull request comment quotes it when no plan could be made). `validate` writes its annotations to
the log, where GitHub reads them."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.ci import outputs
from reconciler.ci.github import add_summary, set_outputs


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    document: str | None  # the file stdout goes to; None: stdout stays in the log
    pending: bool  # exit 2 means changes pending (--detailed-exitcode), not a failure


COMMANDS = {
    "validate": Command(("validate", "--format", "github"), None, False),
    "plan": Command(("plan", "--format", "markdown", "--detailed-exitcode"), "plan.md", True),
    # The scheduled check: the same plan, where changes pending mean the registry drifted.
    "drift": Command(("plan", "--format", "markdown", "--detailed-exitcode"), "plan.md", True),
    "status": Command(("status", "--detailed-exitcode"), "status.txt", True),
    "apply": Command(("apply", "--format", "json"), "apply.json", False),
    "verify": Command(("verify", "--format", "json"), "verify.json", False),
}


@dataclass(frozen=True)
class Result:
    exit_code: int
    outputs: dict[str, str]
    failed: bool  # the command failed (a pending plan is not a failure)


def command_line(command: str, environments: str, args: str) -> list[str]:
    """The arguments after `reconciler`: the command's own, one `--env` per environment (space
    or newline separated), then the extra arguments split as a shell would (never run by one)."""
    chosen = COMMANDS[command]
    scoped = [arg for env in environments.split() for arg in ("--env", env)]
    return [*chosen.argv, *scoped, *shlex.split(args)]


def run(
    command: str,
    environments: str,
    args: str,
    out_dir: Path,
    show: Callable[[str], None],
    relay: Callable[[str], None],
    reconciler: Sequence[str] = (sys.executable, "-m", "reconciler"),
) -> Result:
    """Run the command; `relay` shows each line of its stderr as it comes, `show` the lines of
    a stdout that stays in the log."""
    chosen = COMMANDS[command]
    out_dir.mkdir(parents=True, exist_ok=True)
    errors = out_dir / "errors.txt"
    document = out_dir / chosen.document if chosen.document else None
    argv = [*reconciler, *command_line(command, environments, args)]
    if document is None:
        # validate: quick, and its stdout (annotations) belongs in the log.
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
        for line in done.stdout.splitlines():
            show(line)
        errors.write_text(done.stderr, encoding="utf-8")
        for line in done.stderr.splitlines():
            relay(line)
        code = done.returncode
    else:
        code = _run_to_file(argv, document, errors, relay)
    pending = chosen.pending and code == 2
    changed: list[str] = []
    if command == "apply" and document is not None:
        records, problems = outputs.read_all([document])
        changed = outputs.changed_models(records)
        add_summary(outputs.summary(records, problems))
    values = {
        "exit-code": str(code),
        "changes-pending": "true" if pending else "false",
        "changed-models": json.dumps(changed),
        "plan-file": str(document) if chosen.document == "plan.md" else "",
        "report-file": str(document or ""),
        "errors-file": str(errors),
    }
    set_outputs(values)
    return Result(code, values, failed=code != 0 and not pending)


def _run_to_file(
    argv: list[str], document: Path, errors: Path, relay: Callable[[str], None]
) -> int:
    """stdout to `document`; stderr line by line to `relay` (a long apply shows its progress
    as it goes) and to `errors`."""
    with (
        document.open("w", encoding="utf-8") as out,
        errors.open("w", encoding="utf-8") as kept,
        subprocess.Popen(
            argv, stdout=out, stderr=subprocess.PIPE, text=True, errors="replace"
        ) as process,
    ):
        assert process.stderr is not None
        for line in process.stderr:
            relay(line.rstrip("\n"))
            kept.write(line)
        return process.wait()
