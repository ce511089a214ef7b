"""Turn `reconciler apply --format json` into a job summary and step outputs for deploy jobs.

Called by .github/workflows/reconcile.yml; tested locally (tests/unit/test_ci_scripts.py).

    reconciler apply --format json > apply.json
    python scripts/ci/apply_outputs.py apply.json
Outputs (to $GITHUB_OUTPUT): changed_models (JSON list), changed (true/false).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def summary(records: list[dict[str, Any]]) -> str:
    lines = [
        "### Registry apply",
        "",
        "| Environment | Model | Version | Stage | Archived | Result |",
        "|---|---|---|---|---|---|",
    ]
    for record in records:
        result = "in sync" if record["already_promoted"] else record.get("outcome", "")
        if record.get("retired"):
            result = "retired"
        version = f"v{record['new_version']}" if record.get("new_version") else "-"
        archived = ", ".join(f"v{v}" for v in record.get("archived_versions") or []) or "-"
        lines.append(
            f"| {record['environment']} | `{record['model_name']}` | {version} | "
            f"{record['new_stage']} | {archived} | {result} |"
        )
    return "\n".join(lines) + "\n"


def changed_models(records: list[dict[str, Any]]) -> list[str]:
    return sorted({r["model_name"] for r in records if r.get("promoted") or r.get("retired")})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    args = parser.parse_args(argv)
    records = json.loads(args.records.read_text(encoding="utf-8"))
    changed = changed_models(records)
    if path := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(summary(records))
    if path := os.environ.get("GITHUB_OUTPUT"):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"changed_models={json.dumps(changed)}\n")
            handle.write(f"changed={'true' if changed else 'false'}\n")
    print(f"changed models: {', '.join(changed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
