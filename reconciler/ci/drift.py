"""The drift check's outcome from `reconciler plan --detailed-exitcode`: 0 in sync; 2 drift, so
open or update the one issue that reports it (with the plan) and fail; anything else is an error
of the check itself, never drift: fail with what the code means, and touch no issue."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reconciler.ci.comment import bot_login, read
from reconciler.ci.github import add_summary, gh

# The README's exit-code table, as the drift check reads it.
ERRORS = {
    1: "the check failed (invalid pins or settings, a plan or registry error); see the log",
    3: "a bug in reconciler; see the log, rerun with --traceback",
    4: "refused: out of order",
    64: "a usage error in the workflow's command line",
    130: "interrupted (SIGINT)",
    143: "cancelled (SIGTERM)",
}
BODY_LIMIT = 65_536
TITLE = "Registry drift: the MLflow registry differs from environments/"
MARKER = "<!-- reconciler-drift -->"


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    lines: list[str]


def body(plan_markdown: str, run_url: str | None) -> str:
    where = f"\n\nFound by [the scheduled drift check]({run_url})." if run_url else ""
    return (
        f"{MARKER}\nThe registry no longer matches the pins (a hand edit in the MLflow UI?). "
        "The next apply corrects it; or change the pins if the registry is right.\n\n"
        f"{plan_markdown.strip()}{where}"
    )


def upsert(repo: str, text: str, command: str = "gh") -> str:
    text = _capped(text)
    listed = gh(
        "issue", "list", "--repo", repo, "--state", "open", "--search", f'"{TITLE}" in:title',
        "--json", "number,title,author", command=command,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        # A large plan is over the command line's limit: the body goes in a file.
        body_file = Path(folder) / "body.md"
        body_file.write_text(text, encoding="utf-8")
        for issue in json.loads(listed or "[]"):
            author = (issue.get("author") or {}).get("login")
            # Only our own issue: anyone may open one with this title (hostile review).
            if issue.get("title") == TITLE and author in (bot_login(), "app/github-actions"):
                gh("issue", "edit", str(issue["number"]), "--repo", repo,
                   "--body-file", str(body_file), command=command)  # fmt: skip
                return f"updated #{issue['number']}"
        gh("issue", "create", "--repo", repo, "--title", TITLE, "--body-file", str(body_file),
           command=command)  # fmt: skip
    return "created"


def _capped(text: str) -> str:
    """GitHub refuses an issue body over 65,536 characters."""
    if len(text) <= BODY_LIMIT:
        return text
    cut = text[: BODY_LIMIT - 200].rsplit("\n", 1)[0]
    return f"{cut}\n\n… the plan is longer than an issue can hold: the run's log has it all."


def report(plan: Path, exit_code: int, repo: str, run_url: str | None) -> Outcome:
    """What the check concludes, and the issue opened or updated on drift."""
    if exit_code == 0:
        return Outcome(0, ["in sync: the registry matches the pins"])
    if exit_code != 2:
        meaning = ERRORS.get(exit_code, "an unexpected exit code; see the log")
        return Outcome(
            exit_code, [f"::error title=Drift check failed (exit {exit_code})::{meaning}"]
        )
    markdown = read(plan)
    add_summary(markdown + "\n")
    done = upsert(repo, body(markdown, run_url))
    return Outcome(
        1,
        [f"drift issue {done}", "::error title=Registry drift::the registry differs from the pins"],
    )
