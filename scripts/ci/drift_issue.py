"""Open, or update, the one issue that reports registry drift, with the plan in it.

Called by .github/workflows/drift.yml when `reconciler plan --detailed-exitcode` exits 2;
tested locally (tests/unit/test_ci_scripts.py) with a recording stand-in for `gh`.

    python scripts/ci/drift_issue.py --repo OWNER/NAME plan.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--run-url")
    args = parser.parse_args(argv)
    text = body(args.plan.read_text(encoding="utf-8"), args.run_url)
    print(f"drift issue {upsert(args.repo, text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
