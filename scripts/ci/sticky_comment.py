"""Post a pull request's plan as one sticky comment, updated in place, and write the job summary.

Called by .github/workflows/pr.yml; tested locally (tests/unit/test_ci_scripts.py) with a
recording stand-in for the `gh` CLI, since GitHub is not reachable from the test machines.

    reconciler plan --format markdown > plan.md 2> plan.err; code=$?
    python scripts/ci/sticky_comment.py plan.md --errors plan.err --exit-code "$code" \
        --pr N --repo OWNER/NAME

A plan that failed (exit code not 0) still gets its comment: why it failed, from the plan's
stderr (the one-line errors; workflow commands and debug lines left out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

MARKER = "<!-- reconciler-plan -->"
LIMIT = 60_000  # GitHub refuses comments over 65,536 characters
COLLAPSE_OVER_LINES = 40


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


def upsert(repo: str, pr: int, body: str, gh: str = "gh") -> str:
    """Update the comment carrying MARKER, or create it. Returns "updated" or "created"."""
    listed = subprocess.run(
        [gh, "api", "--paginate", f"repos/{repo}/issues/{pr}/comments", "--jq", ".[] | {id, body}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in filter(str.strip, listed.splitlines()):
        comment = json.loads(line)
        if comment.get("body", "").startswith(MARKER):
            subprocess.run(
                [gh, "api", "--method", "PATCH", f"repos/{repo}/issues/comments/{comment['id']}",
                 "--raw-field", f"body={body}"],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            return "updated"
    create = [gh, "api", "--method", "POST", f"repos/{repo}/issues/{pr}/comments"]
    command = [*create, "--raw-field", f"body={body}"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return "created"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--pr", type=int, required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--run-url")
    parser.add_argument("--exit-code", type=int, default=0, help="the plan's exit code")
    parser.add_argument("--errors", type=Path, help="the plan's stderr")
    args = parser.parse_args(argv)
    markdown = _read(args.plan)
    if args.exit_code != 0:
        markdown = failed(args.exit_code, _read(args.errors) if args.errors else "", markdown)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    outcome = upsert(args.repo, args.pr, render(markdown, args.run_url))
    print(f"plan comment {outcome} on #{args.pr}")
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
