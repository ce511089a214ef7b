"""How the adapter reads MLflow's answers, without importing mlflow: paged searches and their
filters, the link from a model version to its MLflow 3 LoggedModel, a LoggedModel's metrics.

Measured on MLflow 3.17.2 (design notes, "Metric gates on MLflow 3"): the OSS server leaves
`ModelVersion.model_id` empty and keeps the link only in the version's source,
`models:/<model_id>`; a LoggedModel returns every value logged (each step and dataset), in the
order logged; `search_logged_models` needs experiment ids; prompts are registered models that
model searches leave out unless the filter asks for the prompt tag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from math import ceil
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from reconciler.registry.values import Metric

T = TypeVar("T")

EXPERIMENTS_PAGE = 50_000  # the server's maximum for search_experiments (measured)
IDS_PER_FILTER = 1000
LOGGED_MODELS_PAGE = 1000
PROMPT_FILTER = "tags.`mlflow.prompt.is_prompt` = 'true'"


def logged_model_id(source: str | None) -> str | None:
    """The LoggedModel id in a version's source `models:/<model_id>`; None for any other source
    (a run's artifacts, `models:/<name>/<version>` from a copy, `models:/<name>@<alias>`).
    The same reading as MLflow's own `_parse_model_uri`."""
    if not source or not source.startswith("models:/"):
        return None
    path = urlsplit(source).path
    parts = path[1:].split("/") if path.startswith("/") else []
    if len(parts) != 1 or not parts[0].strip() or "@" in parts[0]:
        return None
    return parts[0]


def metrics_of(logged_model: Any) -> tuple[Metric, ...]:
    """Every metric value a LoggedModel entity carries, as logged."""
    return tuple(
        Metric(
            key=str(m.key),
            value=float(m.value),
            step=int(m.step or 0),
            timestamp=int(m.timestamp or 0),
            dataset=str(m.dataset_name) if m.dataset_name else None,
        )
        for m in logged_model.metrics or ()
    )


def search_logged_models(
    client: Any, every_view: Any, model_ids: list[str]
) -> dict[str, tuple[Metric, ...]]:
    """The metrics of many LoggedModels in a few requests. The search needs the experiments'
    ids, which a version does not carry: list them all (`every_view`, deleted ones too), unless
    that makes more requests than one GET per model. What it misses (a model gone, or in an
    experiment the user may not read) the caller reads one by one."""
    listing = bind(client.search_experiments, view_type=every_view)
    experiments = [str(e.experiment_id) for e in pages(listing, EXPERIMENTS_PAGE)]
    if not worth_a_search(len(experiments), len(model_ids)):
        return {}
    found = {}
    for in_experiments in chunks(experiments, IDS_PER_FILTER):
        for some in chunks(model_ids, IDS_PER_FILTER):
            search = bind(
                client.search_logged_models,
                experiment_ids=in_experiments,
                filter_string=id_filter(some),
            )
            for logged in pages(search, LOGGED_MODELS_PAGE):
                found[str(logged.model_id)] = metrics_of(logged)
    return found


def worth_a_search(experiments: int, model_ids: int) -> bool:
    """Whether searching (one request per chunk of experiments and of ids) beats one GET per
    model, the experiment listing already paid."""
    searches = ceil(experiments / IDS_PER_FILTER) * ceil(model_ids / IDS_PER_FILTER)
    return experiments > 0 and searches < model_ids


def id_filter(model_ids: list[str]) -> str:
    quoted = ", ".join("'" + model_id.replace("'", "\\'") + "'" for model_id in model_ids)
    return f"model_id IN ({quoted})"


def pages(search: Callable[..., Any], page_size: int) -> Iterator[Any]:
    token = None
    while True:
        page = search(max_results=page_size, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def bind(function: Callable[..., T], **bound: Any) -> Callable[..., T]:
    def call(**kwargs: Any) -> T:
        return function(**bound, **kwargs)

    return call


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def name_filter(names: list[str]) -> str:
    quoted = ", ".join("'" + name.replace("'", "\\'") + "'" for name in names)
    return f"name IN ({quoted})"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (relative to the current folder, or absolute with
    four slashes); None for other URIs and in-memory databases."""
    if not uri.startswith("sqlite:"):
        return None
    path = unquote(urlsplit(uri).path)  # MLflow's default URI quotes a non-ASCII folder
    path = path[1:] if path.startswith("/") else path
    if path in ("", ":memory:"):
        return None
    return Path(path).absolute()
