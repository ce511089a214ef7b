"""What a reviewer needs beside the plan to judge a change: the metrics of both versions with
their delta, who made the new version and when, links to the MLflow UI, and the policy rules it
passed. Pure: the API gathers the facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

MAX_METRICS = 6


@dataclass(frozen=True)
class VersionFacts:
    version: str
    metrics: Mapping[str, float]
    created: int | None = None  # ms since the epoch
    creator: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class Review:
    new: VersionFacts
    old: tuple[VersionFacts, ...]
    policy: tuple[str, ...] = ()
    gated_metrics: tuple[str, ...] = ()  # shown first


def ui_base(tracking_uri: str | None) -> str | None:
    """The MLflow UI's address for an http(s) tracking URI, with any credentials removed."""
    if not tracking_uri or not tracking_uri.startswith(("http://", "https://")):
        return None
    parts = urlsplit(tracking_uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def version_link(
    base: str | None, model: str, version: str, workspace: str | None = None
) -> str | None:
    """The version's page in the MLflow UI; in a workspace the UI needs `?workspace=` to show
    the right one of two same-named models."""
    if base is None:
        return None
    link = f"{base}/#/models/{quote(model, safe='')}/versions/{version}"
    return f"{link}?workspace={quote(workspace, safe='')}" if workspace else link


def key_metrics(named: list[str], new: Mapping[str, float], old: Mapping[str, float]) -> list[str]:
    """The metrics the gates name first, then the others both runs have, a handful at most."""
    shared = sorted((set(new) | set(old)) - set(named))
    return (named + shared)[:MAX_METRICS]
