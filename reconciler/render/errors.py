"""A failure for machines: the JSON error document and GitHub workflow-command annotations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.errors import Problem
from reconciler.redact import scrub


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
    """`::error file=…,line=…,title=…::message`, escaped as GitHub's workflow commands want."""

    def prop(text: str) -> str:
        return workflow_data(text).replace(":", "%3A").replace(",", "%2C")

    where = f"file={prop(problem.file)}"
    if problem.line is not None:
        where += f",line={problem.line}"
    title = f"reconciler: {problem.field}" if problem.field else "reconciler"
    return f"::error {where},title={prop(title)}::{workflow_data(scrub(problem.message))}"


def workflow_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
