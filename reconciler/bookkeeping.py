"""Names of what reconciler keeps in the registry itself (tags), in one place.

The registered model `reconciler-state` (created on first use, no versions) holds tool-wide
records; per-model and per-version tags live on the models they describe.
"""

from __future__ import annotations

STATE_MODEL = "reconciler-state"
# On STATE_MODEL: the one-writer lease (lease.py).
LEASE_TAG = "reconciler.lease"


def applied_commit_tag(environment: str) -> str:
    """On each registered model: the last git commit applied to it in `environment` (fencing by
    ancestry). Per model, so repositories managing different models never fence each other."""
    return f"reconciler.applied_commit.{environment}"


# On each registered model an apply is about to change: `<plan checksum> by <holder>`.
PLAN_TAG = "reconciler.last_plan"


def audit_tag(environment: str) -> str:
    """On a model version: JSON list of the applies that put it in `environment`, newest last."""
    return f"reconciler.audit.{environment}"


AUDIT_KEEP = 20  # records kept per version and environment (a tag value is capped in size)


def managed_tag(environment: str) -> str:
    """On each registered model reconciler has applied in `environment`: ownership, valued with
    the repository's identity (gitrepo.repository_id), so that removing its pin may retire it
    there (prune) and nothing another repository manages is ever retired."""
    return f"reconciler.managed.{environment}"
