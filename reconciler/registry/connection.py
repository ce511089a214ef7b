"""How to reach one registry: its tracking URI and, for an environment's own `registry:`, its own
credentials."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Connection:
    """How to reach one registry. `configured=False`: the command's registry (--tracking-uri /
    MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, MLFLOW_WORKSPACE as today).
    `configured=True`: an environment's `registry:` settings: only the values given here are
    sent (the command's MLFLOW_TRACKING_* credentials and MLFLOW_WORKSPACE are never sent to it)."""

    tracking_uri: str | None = None
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    configured: bool = False
