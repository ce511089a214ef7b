"""The drift check's outcome from `reconciler plan --detailed-exitcode`: 0 in sync; 2 drift, so
open or update the one issue that reports it (with the plan) and fail; anything else is an error
of the check itself, never drift: fail with what the code means, and touch no issue.

Called by .github/workflows/drift.yml; tested locally (tests/unit/test_ci_scripts.py) with a
recording stand-in for `gh`, and with the real CLI's output.

    reconciler plan --format markdown --detailed-exitcode > plan.md; code=$?
    python scripts/ci/drift_issue.py plan.md --exit-code "$code" --repo OWNER/NAME
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# The README's exit-code table, as the drift check reads it.
ERRORS = {
    1: "the check failed (invalid pins or settings, a plan or registry error); see the log",
    3: "a bug in reconciler; see the log, rerun with --traceback",
    4: "refused: out of order",
    64: "a usage error in the workflow's command line",
    130: "interrupted (SIGINT)",
    143: "cancelled (SIGTERM)",
}
TITLE = "Registry drift: the MLflow registry differs from environments/"
MARKER = "<!-- reconciler-drift -->"


def body(plan_markdown: str, run_url: str | None) -> str:
    where = f"\n\nFound by [the scheduled drift check]({run_url})." if run_url else ""
    return (
        f"{MARKER}\nThe registry no longer matches the pins (a hand edit in the MLflow UI?). "
        "The next apply corrects it; or change the pins if the registry is right.\n\n"
        f"{plan_markdown.strip()}{where}"
    )


def upsert(repo: str, text: str, gh: str = "gh") -> str:
    listed = subprocess.run(
        [gh, "issue", "list", "--repo", repo, "--state", "open", "--search", f'"{TITLE}" in:title',
         "--json", "number,title"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    for issue in json.loads(listed or "[]"):
        if issue.get("title") == TITLE:
            subprocess.run(
                [gh, "issue", "edit", str(issue["number"]), "--repo", repo, "--body", text],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            return f"updated #{issue['number']}"
    subprocess.run(
        [gh, "issue", "create", "--repo", repo, "--title", TITLE, "--body", text],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return "created"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--run-url")
    parser.add_argument("--exit-code", type=int, default=2, help="the plan's exit code")
    args = parser.parse_args(argv)
    code = int(args.exit_code)
    if code == 0:
        print("in sync: the registry matches the pins")
        return 0
    if code != 2:
        meaning = ERRORS.get(code, "an unexpected exit code; see the log")
        print(f"::error title=Drift check failed (exit {code})::{meaning}", flush=True)
        return code
    plan = args.plan.read_text(encoding="utf-8") if args.plan.exists() else ""
    if path := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(plan + "\n")
    print(f"drift issue {upsert(args.repo, body(plan, args.run_url))}")
    print("::error title=Registry drift::the registry differs from the pins", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
