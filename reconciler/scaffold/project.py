"""Where this project lives on GitHub, and the release a scaffold pins: the installed one."""

from __future__ import annotations

from reconciler import __version__

# The action (action.yml at its root), the reusable workflows and the pre-commit hook are
# addressed by this repository; pyproject.toml's project URLs name the same one (tests keep them
# in step). A release X.Y.Z is the tag vX.Y.Z there.
ACTION_REPOSITORY = "mlflow-reconciler/mlflow-reconciler"
VERSION = __version__

# The secrets the workflows read (README "On GitHub"): (name, what it is).
SECRETS = (
    ("MLFLOW_TRACKING_URI", "the registry, e.g. https://mlflow.example.com"),
    ("MLFLOW_READONLY_USERNAME", "read-only registry login: plan, drift, promote, propose"),
    ("MLFLOW_READONLY_PASSWORD", "its password"),
    ("MLFLOW_USERNAME", "registry login that may write: reconcile on merge"),
    ("MLFLOW_PASSWORD", "its password"),
    ("RECONCILER_WEBHOOK_URL", "optional: a Slack-compatible webhook for promotions"),
)
