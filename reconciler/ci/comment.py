"""A pull request's plan as one sticky comment, updated in place, and in the job summary.

A plan that failed still gets its comment: why it failed, from the plan's stderr (the one-line
errors; workflow commands and debug lines left out). Exit 2 of `plan --detailed-exitcode` is a
plan with changes pending, not a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from reconciler.ci.github import add_summary, gh

MARKER = "<!-- reconciler-plan -->"
LIMIT = 60_000  # GitHub refuses comments over 65,536 characters
COLLAPSE_OVER_LINES = 40
PLAN_MADE = (0, 2)  # in sync; changes pending (--detailed-exitcode)


def failed(exit_code: int, errors: str, plan_markdown: str = "") -> str:
    """The comment's markdown when the plan could not be made: the exit code and the errors."""
    lines = [
        line
        for line in errors.splitlines()
        if line.strip() and not line.startswith(("::", "debug: "))
    ]
    text = "\n".join(lines) or "(no error message: see the workflow run's log)"
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    parts = [
        f"### Registry plan: failed (exit {exit_code})",
        "",
        "No plan could be made, so there is nothing to review yet; nothing was changed in the "
        "registry. Fix what the errors below say and push again.",
        "",
        fence,
        text,
        fence,
    ]
    if plan_markdown.strip():
        parts += ["", plan_markdown.strip()]
    return "\n".join(parts)


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def render(plan_markdown: str, run_url: str | None = None) -> str:
    """The comment body: marker first (to find it again), long plans collapsed, size capped."""
    body = plan_markdown.strip()
    lines = body.splitlines()
    if len(lines) > COLLAPSE_OVER_LINES:
        head, rest = lines[0], "\n".join(lines[1:])
        summary = f"<details><summary>Full plan ({len(lines)} lines)</summary>"
        body = f"{head}\n\n{summary}\n\n{rest}\n\n</details>"
    footer = f"\n\n[Workflow run]({run_url})" if run_url else ""
    budget = LIMIT - len(MARKER) - len(footer) - 200
    if len(body) > budget:
        cut = body[:budget].rsplit("\n", 1)[0]
        if "<details>" in cut and "</details>" not in cut:
            cut += "\n\n</details>"
        size = len(plan_markdown)
        body = f"{cut}\n\n… plan truncated ({size} characters); the job summary has it all."
    return f"{MARKER}\n{body}{footer}"


def bot_login() -> str:
    """Who writes the plan comment: the workflow's token (`github-actions[bot]`), or the GitHub
    App a team uses instead (RECONCILER_BOT_LOGIN)."""
    return os.environ.get("RECONCILER_BOT_LOGIN") or "github-actions[bot]"


def upsert(repo: str, pr: int, body: str, command: str = "gh") -> str:
    """Update the comment carrying MARKER, or create it. Returns "updated" or "created"."""
    listed = gh(
        "api", "--paginate", f"repos/{repo}/issues/{pr}/comments",
        "--jq", ".[] | {id, body, author: .user.login}", command=command,
    )  # fmt: skip
    for line in filter(str.strip, listed.splitlines()):
        comment = json.loads(line)
        # Only our own comment: anyone may write one starting with the marker (hostile review).
        if comment.get("author") == bot_login() and comment.get("body", "").startswith(MARKER):
            gh(
                "api", "--method", "PATCH", f"repos/{repo}/issues/comments/{comment['id']}",
                "--raw-field", f"body={body}", command=command,
            )  # fmt: skip
            return "updated"
    gh(
        "api", "--method", "POST", f"repos/{repo}/issues/{pr}/comments",
        "--raw-field", f"body={body}", command=command,
    )  # fmt: skip
    return "created"


def post(
    plan: Path, errors: Path | None, exit_code: int, pr: int, repo: str, run_url: str | None
) -> str:
    """Write the job summary and the sticky comment; what was done to the comment."""
    markdown = read(plan)
    if exit_code not in PLAN_MADE:
        markdown = failed(exit_code, read(errors) if errors else "", markdown)
    add_summary(markdown + "\n")
    return upsert(repo, pr, render(markdown, run_url))


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return ""
