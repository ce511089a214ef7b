"""Apply environments one at a time, in the order given (the promotion order), each to its own
`apply-<env>.json`; stop at the first that fails and exit with its code.

Called by .github/workflows/reconcile.yml; tested with the real CLI
(tests/integration/test_review_and_ci.py).

    python scripts/ci/apply_in_order.py '["dev", "staging"]' [--reconciler reconciler]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("environments", help="JSON list of environment names, in order")
    parser.add_argument("--reconciler", default="reconciler", help="the command to run")
    parser.add_argument("--out-dir", type=Path, default=Path())
    args = parser.parse_args(argv)
    environments = json.loads(args.environments)
    for index, environment in enumerate(environments):
        print(f"::group::reconciler apply --env {environment}", flush=True)
        out = args.out_dir / f"apply-{environment}.json"
        with out.open("w", encoding="utf-8") as handle:
            # stderr (result lines, notes, errors, annotations) goes to the job log as it comes.
            done = subprocess.run(
                [args.reconciler, "apply", "--env", environment, "--format", "json"],
                stdout=handle,
                check=False,
            )
        print("::endgroup::", flush=True)
        if done.returncode != 0:
            rest = ", ".join(environments[index + 1 :]) or "none"
            print(
                f"::error title=reconcile: {environment} failed::reconciler apply --env "
                f"{environment} exited {done.returncode}; not applied after it: {rest}",
                flush=True,
            )
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
