"""A verify report: a line per endpoint and a summary, or one JSON document. What a backend said
and the URLs are scrubbed (redact) field by field in `Outcome`, never the document as a whole:
a short secret masked inside a number would break the JSON."""

from __future__ import annotations

import json

from reconciler.redact import scrub
from reconciler.render import escape
from reconciler.serving.verify import Outcome, all_ok


def text(outcomes: list[Outcome]) -> str:
    """The verify report as a person reads it: one line per endpoint, then a summary."""
    if not outcomes:
        return "nothing to verify: no pin in scope has serving: (in its pin or environment)"
    lines = []
    for outcome in outcomes:
        target = outcome.target
        where = f"{target.model} in {target.environment}"
        url = scrub(outcome.url)
        if outcome.ok:
            lines.append(
                f"ok    {where}: serves v{target.expected} ({url}, after {outcome.seconds:.1f}s)"
            )
        else:
            ended = "interrupted" if outcome.interrupted else "gave up"
            lines.append(
                f"FAIL  {where}: pinned v{target.expected}, {outcome.problem()} ({url}, "
                f"{ended} after {outcome.seconds:.1f}s, {outcome.polls} poll(s))"
            )
    failed = sum(not outcome.ok for outcome in outcomes)
    if failed:
        lines.append(f"{failed} of {len(outcomes)} endpoint(s) do not serve their pinned version")
    else:
        lines.append(f"all {len(outcomes)} endpoint(s) serve their pinned version")
    return escape.lines(lines)


def as_json(outcomes: list[Outcome]) -> str:
    return json.dumps(
        {"ok": all_ok(outcomes), "endpoints": [outcome.record() for outcome in outcomes]},
        indent=2,
    )
