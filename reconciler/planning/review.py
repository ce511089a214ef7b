"""What a reviewer needs beside the plan to judge a change: the metrics of both versions with
their delta and where each figure came from, who made the new version and when, links to the
MLflow UI, and the policy rules it passed. Pure: the API gathers the facts."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

from reconciler.pins.gates import metric_label as label
from reconciler.planning.figures import Figure, Miss, VersionMetrics

MAX_METRICS = 6


@dataclass(frozen=True)
class VersionFacts:
    version: str
    metrics: Mapping[str, float]  # by label: `accuracy`, `accuracy (eval)`
    created: int | None = None  # ms since the epoch
    creator: str | None = None
    link: str | None = None
    origins: Mapping[str, str] = field(default_factory=dict)  # by label: `run`, `model, eval`


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


def metric_rows(
    gated: Iterable[tuple[str, str | None]], versions: Iterable[VersionMetrics]
) -> list[tuple[str, str | None]]:
    """(key, dataset) of the rows a review may show: what the gates read, then every figure
    any of the versions has, each once (a key alone is left out beside rows naming its
    datasets: it would repeat them)."""
    rows = list(dict.fromkeys(gated))
    for metrics in versions:
        for key, dataset in metrics.labels():
            shown = (key, dataset) in rows or (dataset is None and any(k == key for k, _ in rows))
            if not shown:
                rows.append((key, dataset))
    return rows


def figures(
    rows: Iterable[tuple[str, str | None]],
    metrics: VersionMetrics,
    gated: Collection[tuple[str, str | None]] = (),
) -> dict[str, Figure]:
    """The figure of each row this version has, by label. On a row a gate reads, a run's value
    stands in for a dataset the run cannot name, so the version a model moved to MLflow 3 from
    is still compared; elsewhere it would repeat on every dataset's row."""
    found = {}
    for key, dataset in rows:
        figure = metrics.figure(key, dataset)
        if (
            isinstance(figure, Miss)
            and figure.why == "run_has_no_datasets"
            and ((key, dataset) in gated)
        ):
            figure = metrics.figure(key)
        if isinstance(figure, Figure):
            found[label(key, dataset)] = figure
    return found
