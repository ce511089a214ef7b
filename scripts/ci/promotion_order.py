"""The environments to apply, in promotion order, split where the GitHub Environment
`production` gates them: `before` (applied first, no approval) and `gated` (the first
Production-stage environment and every one after it).

Called by .github/workflows/reconcile.yml; tested with the real CLI.

    reconciler validate --format json > environments.json
    python scripts/ci/promotion_order.py environments.json
Outputs (to $GITHUB_OUTPUT): before, gated (JSON lists of names).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def split(environments: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    names = [str(env["name"]) for env in environments]
    gate = next(
        (i for i, env in enumerate(environments) if env.get("stage") == "Production"), len(names)
    )
    return names[:gate], names[gate:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("validated", type=Path, help="the output of validate --format json")
    args = parser.parse_args(argv)
    document = json.loads(args.validated.read_text(encoding="utf-8") or "{}")
    if "environments" not in document:
        print("::error title=reconcile::reconciler validate gave no environments", flush=True)
        return 1
    before, gated = split(document["environments"])
    if path := os.environ.get("GITHUB_OUTPUT"):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"before={json.dumps(before)}\ngated={json.dumps(gated)}\n")
    print(f"promotion order: {' → '.join([*before, *gated]) or 'no environments'}")
    print(f"behind the production GitHub Environment: {', '.join(gated) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
