"""A failure for machines: the JSON error document and GitHub workflow-command annotations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.errors import Problem
from reconciler.redact import scrub
from reconciler.render.escape import text, workflow_data, workflow_property


def error_json(message: str, exit_code: int, problems: Sequence[Problem] = ()) -> str:
    """`{"error": {"message", "exit_code", "problems": [{"file", "line", "field", "message"}]}}`,
    `problems` only when there are any."""
    error: dict[str, Any] = {"message": scrub(message), "exit_code": exit_code}
    if problems:
        error["problems"] = [
            {"file": p.file, "line": p.line, "field": p.field, "message": scrub(p.message)}
            for p in problems
        ]
    return json.dumps({"error": error}, indent=2, ensure_ascii=False)


def github_annotation(problem: Problem) -> str:
    """`::error file=…,line=…,title=…::message`, escaped as GitHub's workflow commands want. The
    file stays exact (GitHub matches it against the diff); title and message are one line, as
    the error line on stderr is."""
    where = f"file={workflow_property(problem.file)}"
    if problem.line is not None:
        where += f",line={problem.line}"
    title = f"reconciler: {problem.field}" if problem.field else "reconciler"
    message = workflow_data(text(scrub(problem.message)))
    return f"::error {where},title={workflow_property(text(title))}::{message}"


def github_error(message: str) -> str:
    """A failure with no file to point at, as one annotation."""
    return f"::error title=reconciler::{workflow_data(text(scrub(message)))}"
