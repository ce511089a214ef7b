"""The MLflow Model Registry behind the `Registry` port. The only module that imports `mlflow`.

It hides MLflow's quirks (DESIGN §6): pagination on every search, an explicit sort so pages neither
skip nor repeat rows, empty aliases in version searches, int-vs-str versions, the stage
deprecation warning, retry defaults that block for minutes, and error messages carrying URLs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from reconciler.errors import (
    ReconcilerError,
    RegistryAuthError,
    RegistryError,
    RegistryPermissionDenied,
    RegistryUnreachable,
)
from reconciler.pins.values import WorkspaceSetting, filterable_name
from reconciler.redact import redact_uri, scrub
from reconciler.registry import messages
from reconciler.registry.connection import GATE, Connection
from reconciler.registry.messages import NO_ATOMIC_ARCHIVE, refuses_atomic_archive
from reconciler.registry.mlflow_copying import MlflowCopying
from reconciler.registry.mlflow_reading import (
    PROMPT_FILTER,
    logged_model_id,
    metrics_of,
    search_logged_models,
    sqlite_file,
)
from reconciler.registry.mlflow_reading import bind as _bind
from reconciler.registry.mlflow_reading import chunks as _chunks
from reconciler.registry.mlflow_reading import name_filter as _name_filter
from reconciler.registry.mlflow_reading import pages as _pages
from reconciler.registry.values import ActualState, Metric, ModelVersion, RegisteredModel
from reconciler.registry.workspaces import ENV_VARIABLE, Workspace, check_agreement, resolve

T = TypeVar("T")

# MLflow retries 7 times with backoff factor 2 and 120 s per attempt: minutes before a registry
# that accepts connections and never answers is reported. CI wants an answer within 45 s: 3
# attempts of 10 s plus 2 s of backoff (and up to 1 s jitter each). MLflow applies its one timeout
# to connect and to each read alike (a scalar `timeout` for requests; its REST store passes no
# other, and no variable takes a (connect, read) pair), so a separate connect timeout would mean
# patching MLflow; a refused or unroutable connection is bounded by the same 10 s. MLflow's own
# variables, when set, win.
MODELS_PAGE = 1000  # server-side maximum for search_registered_models
VERSIONS_PAGE = 10_000
NAMES_PER_FILTER = 1000  # `name IN (...)` breaks the filter parser at ~5,000 names
_STAGE_WARNING = ".*Model registry stages will be removed.*"


def check_tracking_uri(uri: str | None) -> tuple[str, str | None]:
    """The URI to use and, without one set, a note saying which registry that is.

    With no URI set MLflow falls back to `sqlite:///mlflow.db` in the current folder (usually the
    promotion repository) and creates it silently: we use that default only when the database
    exists already. A sqlite URI whose folder does not exist is a typo, not a new registry.
    """
    from reconciler.errors import UsageError

    note = None
    if not uri:
        from mlflow.tracking._tracking_service.utils import get_tracking_uri

        uri = str(get_tracking_uri())
        note = (
            f"no tracking URI set (--tracking-uri or MLFLOW_TRACKING_URI): using MLflow's "
            f"default registry, {redact_uri(uri)}"
        )
    database = sqlite_file(uri)
    if database is None:
        return uri, note
    if not database.parent.is_dir():
        raise UsageError(
            f"{redact_uri(uri)}: the folder {database.parent} does not exist; MLflow would "
            "create a new, empty registry there (a typo in the URI?)"
        )
    if note and not database.exists():
        raise UsageError(
            f"no tracking URI set (--tracking-uri or MLFLOW_TRACKING_URI), and MLflow's default "
            f"would create a new, empty registry database at {database}; set MLFLOW_TRACKING_URI "
            f"to your registry (or pass --tracking-uri {uri} to create it on purpose)"
        )
    return uri, note


class MlflowRegistry(MlflowCopying):
    def __init__(
        self, tracking_uri: str | None = None, connection: Connection | None = None
    ) -> None:
        # With a connection, its URI wins. Its credentials and workspace reach MLflow only
        # through the gate, for this registry's calls (connection.py says why).
        self._connection = connection or Connection(tracking_uri)
        self._uri = self._connection.tracking_uri or tracking_uri
        self._connection.register_secrets()
        self._client_instance: Any = None
        self._run_metrics: dict[str, dict[str, float] | None] = {}
        self._logged_models: dict[str, tuple[Metric, ...] | None] = {}
        # Learnt from the server once per instance (one instance per command): after the first
        # refusal every promotion goes straight to the two-step fallback.
        self._atomic_archive = True
        # Said once, for the command to print (the adapter never prints).
        self.notices: list[str] = []
        self.workspace: Workspace | None = None

    def use_workspace(self, setting: WorkspaceSetting | None) -> Workspace:
        """Resolve the workspace and send every later request to it. MLflow adds the header
        from MLFLOW_WORKSPACE to every request it makes, raw REST included and from any thread
        (a ContextVar would not reach the apply's worker threads), so the gate sets that
        variable while this registry's calls run. A configured registry's workspace is its
        setting alone: the command's MLFLOW_WORKSPACE is for the command's registry."""
        if self.workspace is None:
            own = self._connection.configured or (setting is not None and setting.environment_own)
            environ = None if own else os.environ.get(ENV_VARIABLE)
            check_agreement(setting, environ)  # before any request
            supported = self._server_has_workspaces()
            self.workspace = resolve(setting, environ, supported, self.display_uri)
        return self.workspace

    def _settings(self) -> dict[str, str | None]:
        """The environment the gate gives this registry's calls."""
        chosen = self.workspace if self.workspace and self.workspace.chosen_by else None
        return self._connection.settings(chosen.name if chosen else None)

    def _server_has_workspaces(self) -> bool:
        """Ask the server (`/api/3.0/mlflow/server-info`, one GET). Only a tracking server has
        workspaces; a server too old to have the endpoint (404) has none. Any other refusal is
        an error: read as "none", an apply would go on in the default workspace."""
        uri = self._resolved_uri()
        if not uri.startswith(("http://", "https://")):
            return False
        with self._translated_errors("ask the registry whether it has workspaces"):
            from mlflow.utils.rest_utils import http_request, verify_rest_response

            store = self._writer().store
            creds = store.get_host_creds()
            info = "/api/3.0/mlflow/server-info"
            response = http_request(creds, info, "GET")  # type: ignore[no-untyped-call]
            if response.status_code == 404:
                return False
            # MLflow's own reading of a refusal (UNAUTHENTICATED, PERMISSION_DENIED, ...), so the
            # error says what any other request's would.
            verify_rest_response(response, info)
            return bool(response.json().get("workspaces_enabled"))

    @property
    def display_uri(self) -> str:
        return redact_uri(self._resolved_uri())

    def _resolved_uri(self) -> str:
        if self._uri:
            return self._uri
        from mlflow.tracking._tracking_service.utils import get_tracking_uri

        return str(get_tracking_uri())

    def _client(self) -> Any:
        if self._client_instance is None:
            for name, value in messages.HTTP_DEFAULTS.items():
                os.environ.setdefault(name, value)
            os.environ.update(messages.QUIET)
            # Our import, not the module's: `validate` and `--help` never pay for MLflow.
            from mlflow import MlflowClient

            # MLflow's own INFO chatter (database creation, alembic upgrades) is not ours to print.
            messages.route_logging()
            uri = self._resolved_uri()
            self._client_instance = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client_instance

    def _writer(self) -> Any:
        """The registry client under MlflowClient, for writes: one HTTP call each. MlflowClient
        first GETs the model to refuse prompts, doubling every write (DESIGN §6); our writes only
        touch models that pins name, which are models."""
        return self._client()._get_registry_client()

    # -- reads --

    def read(self, models: Collection[str]) -> ActualState:
        with self._translated_errors("read the registry"):
            client = self._client()
            registered = {
                rm.name: rm for rm in _pages(client.search_registered_models, MODELS_PAGE)
            }
            # A name the filter parser cannot take would fail the whole read: such models
            # (refused in pins) are listed with their latest version per stage only.
            wanted = sorted(name for name in models if name in registered and filterable_name(name))
            full: dict[str, dict[str, ModelVersion]] = {name: {} for name in wanted}
            for chunk in _chunks(wanted, NAMES_PER_FILTER):
                search = _bind(
                    client.search_model_versions,
                    filter_string=_name_filter(chunk),
                    order_by=["name ASC", "version_number ASC"],
                )
                for mv in _pages(search, VERSIONS_PAGE):
                    full[mv.name][str(mv.version)] = _version(mv)
        result = {}
        for name, rm in registered.items():
            versions = full.get(name)
            if versions is None:
                # Not pinned: its latest version per stage is enough to list it as unmanaged.
                versions = {str(mv.version): _version(mv) for mv in rm.latest_versions or ()}
            aliases = {alias: str(version) for alias, version in (rm.aliases or {}).items()}
            result[name] = RegisteredModel(name, versions, aliases, _tags(rm))
        # Model searches leave prompts out: a name not found may be one (one more request, only
        # when a pin names something that is no registered model).
        missing = [name for name in models if name not in registered]
        return ActualState(result, self.read_prompts(missing) if missing else {})

    def read_prompts(self, names: Collection[str] | None = None) -> dict[str, RegisteredModel]:
        if names is None:
            filters = [PROMPT_FILTER]
        else:
            named = sorted(name for name in names if filterable_name(name))
            filters = [
                f"{_name_filter(chunk)} AND {PROMPT_FILTER}"
                for chunk in _chunks(named, NAMES_PER_FILTER)
            ]
        found = {}
        with self._translated_errors("read the prompts"):
            for text in filters:
                search = _bind(self._client().search_registered_models, filter_string=text)
                for rm in _pages(search, MODELS_PAGE):
                    versions = {str(mv.version): _version(mv) for mv in rm.latest_versions or ()}
                    aliases = {alias: str(v) for alias, v in (rm.aliases or {}).items()}
                    found[rm.name] = RegisteredModel(rm.name, versions, aliases, _tags(rm))
        return found

    def read_model(self, model: str) -> RegisteredModel | None:
        with self._translated_errors(f"read {model}"):
            client = self._client()
            registered = _unless(GONE, lambda: client.get_registered_model(model))
            if registered is None:
                return None
            search = _bind(
                client.search_model_versions,
                filter_string=_name_filter([model]),
                order_by=["version_number ASC"],
            )
            versions = {str(mv.version): _version(mv) for mv in _pages(search, VERSIONS_PAGE)}
        aliases = {alias: str(v) for alias, v in (registered.aliases or {}).items()}
        return RegisteredModel(model, versions, aliases, _tags(registered))

    def read_versions(self, model: str) -> dict[str, ModelVersion]:
        if not filterable_name(model):
            found = self.read_model(model)  # the filter cannot name it: the long way
            return dict(found.versions) if found is not None else {}
        with self._translated_errors(f"read {model}"):
            search = _bind(
                self._client().search_model_versions,
                filter_string=_name_filter([model]),
                order_by=["version_number ASC"],
            )
            return {str(mv.version): _version(mv) for mv in _pages(search, VERSIONS_PAGE)}

    def run_metrics(self, run_id: str) -> dict[str, float] | None:
        # One read per run and command: the policy of the first plan, of the plan made under
        # the lease and the markdown review all ask for the same runs.
        if run_id not in self._run_metrics:
            with self._translated_errors(f"read run {run_id}"):
                run = _unless(GONE, lambda: self._client().get_run(run_id))
            metrics = None if run is None else {k: float(v) for k, v in run.data.metrics.items()}
            self._run_metrics[run_id] = metrics
        found = self._run_metrics[run_id]
        return None if found is None else dict(found)

    def logged_model_metrics(
        self, model_ids: Collection[str]
    ) -> dict[str, tuple[Metric, ...] | None]:
        # Once per model and command, as runs: a few one GET each, more in one search.
        wanted = [i for i in dict.fromkeys(model_ids) if i not in self._logged_models]
        if len(wanted) > 2:
            with self._translated_errors("search the logged models"):
                from mlflow.entities import ViewType

                searched = search_logged_models(self._client(), ViewType.ALL, wanted)
                self._logged_models.update(searched)
        for model_id in wanted:
            if model_id in self._logged_models:
                continue
            with self._translated_errors(f"read logged model {model_id}"):
                found = _unless(GONE, lambda: self._client().get_logged_model(model_id))  # noqa: B023
            self._logged_models[model_id] = None if found is None else metrics_of(found)
        return {model_id: self._logged_models[model_id] for model_id in model_ids}

    # -- writes --

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        if archive_existing and stage in ("Archived", "None"):
            # The server answers 500 and the client retries it for minutes (DESIGN §6).
            raise RegistryError(f"refusing archive_existing_versions towards {stage}")
        with self._translated_errors(f"move {model} v{version} to {stage}"):
            atomic = archive_existing and self._atomic_archive
            if atomic and self._transition_archiving(model, version, stage):
                return
            self._writer().transition_model_version_stage(
                model, version, stage, archive_existing_versions=False
            )
            if archive_existing:
                self._archive_others(model, version, stage)

    def _transition_archiving(self, model: str, version: str, stage: str) -> bool:
        """MLflow's archive-and-transition in one call; False when this server refuses it (the
        refused call changed nothing: its failing query is the first in its transaction)."""
        from mlflow.exceptions import MlflowException

        try:
            self._writer().transition_model_version_stage(
                model, version, stage, archive_existing_versions=True
            )
        except MlflowException as error:
            if not refuses_atomic_archive(error.error_code, str(error)):
                raise
            self._atomic_archive = False
            self.notices.append(NO_ATOMIC_ARCHIVE)
            return False
        return True

    def _archive_others(self, model: str, version: str, stage: str) -> None:
        """The fallback's second step: archive every other version in `stage`, one plain
        transition each. Version in first, then the others out: the stage is never empty. Under
        the lease; apply's re-read and repair catches what a writer outside it adds meanwhile."""
        search = _bind(
            self._client().search_model_versions,
            filter_string=_name_filter([model]),
            order_by=["version_number ASC"],
        )
        holders = [
            str(mv.version)
            for mv in _pages(search, VERSIONS_PAGE)
            if mv.current_stage == stage and str(mv.version) != version
        ]
        for holder in holders:
            self._writer().transition_model_version_stage(
                model, holder, "Archived", archive_existing_versions=False
            )

    def set_alias(self, model: str, alias: str, version: str) -> None:
        with self._translated_errors(f"set {model}@{alias} to v{version}"):
            _once_more_on_insert_race(
                lambda: self._writer().set_registered_model_alias(model, alias, version)
            )

    def delete_alias(self, model: str, alias: str) -> None:
        with self._translated_errors(f"remove {model}@{alias}"):
            _unless(GONE, lambda: self._writer().delete_registered_model_alias(model, alias))

    def get_model_tag(self, model: str, key: str) -> str | None:
        with self._translated_errors(f"read the tags of {model}"):
            registered = _unless(GONE, lambda: self._client().get_registered_model(model))
        value = (registered.tags or {}).get(key) if registered is not None else None
        return None if value is None else str(value)

    def set_model_tag(
        self, model: str, key: str, value: str, *, create_model: bool = False
    ) -> None:
        from mlflow.exceptions import MlflowException

        def tag() -> None:
            _once_more_on_insert_race(
                lambda: self._writer().set_registered_model_tag(model, key, value)
            )

        with self._translated_errors(f"tag {model}"):
            try:
                tag()
            except MlflowException as error:
                # The model almost always exists: tag first, and create it only when the server
                # says it does not (never a create that is known to fail), then tag again.
                if not create_model or error.error_code != GONE:
                    raise
                _unless(EXISTS, lambda: self._writer().create_registered_model(model))
                tag()

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        with self._translated_errors(f"tag {model} v{version}"):
            _once_more_on_insert_race(
                lambda: self._writer().set_model_version_tag(model, version, key, value)
            )

    def delete_model_tag(self, model: str, key: str) -> None:
        with self._translated_errors(f"untag {model}"):
            _unless(GONE, lambda: self._writer().delete_registered_model_tag(model, key))

    @contextmanager
    def _translated_errors(self, action: str) -> Iterator[None]:
        # Every MLflow call of the adapter runs in here, so every one passes the gate.
        with GATE.holding(self._settings()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_STAGE_WARNING, category=FutureWarning)
            try:
                yield
            except ReconcilerError:
                raise  # ours already (a copy stopped by a signal, a digest that differs)
            except Exception as error:
                raise self._translate(error, action) from None

    def _translate(self, error: Exception, action: str) -> RegistryError:
        from mlflow.exceptions import MlflowException

        uri = self.display_uri
        if not isinstance(error, MlflowException):
            return RegistryError(f"cannot {action} at {uri}: {scrub(messages.first_line(error))}")
        code = error.error_code
        message = scrub(messages.first_line(error))
        if code == "UNAUTHENTICATED":
            where = messages.credentials(configured=self._connection.configured)
            return RegistryAuthError(f"authentication failed at {uri}: check {where}")
        if code == "PERMISSION_DENIED":
            return RegistryPermissionDenied(
                f"permission denied: cannot {action} at {uri} "
                f"(the registry says: {messages.server_says(message)})"
            )
        if "API request to" in message and "failed with" in message:
            cause = messages.cause(message)
            if cause == "timed out":
                cause = messages.no_answer()
            return RegistryUnreachable(f"cannot reach the registry at {uri}: {cause}")
        return RegistryError(f"cannot {action} at {uri}: {message}")


GONE = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"


def _unless(error_code: str, call: Callable[[], T]) -> T | None:
    """`call()`, or None when MLflow answers with `error_code`: a read of something absent, a
    delete of something already gone, a create of something already there."""
    from mlflow.exceptions import MlflowException

    try:
        return call()
    except MlflowException as error:
        if error.error_code != error_code:
            raise
        return None


def _once_more_on_insert_race(write: Callable[[], object]) -> None:
    """Two clients creating the same alias or tag at once: the database refuses the second
    insert (sqlite: 400 "UNIQUE constraint failed"). The row exists now, so the retry updates it
    (DESIGN §6: safe to retry once)."""
    from mlflow.exceptions import MlflowException

    try:
        write()
    except MlflowException as error:
        text = str(error)
        if "UNIQUE constraint" not in text and "duplicate key" not in text.lower():
            raise
        write()


def _tags(entity: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (entity.tags or {}).items()}


def _version(mv: Any) -> ModelVersion:
    status = mv.status
    # The sqlite store may hand back the enum's int; REST gives the name.
    if not isinstance(status, str):
        from mlflow.entities.model_registry.model_version_status import ModelVersionStatus

        status = str(ModelVersionStatus.to_string(status))  # type: ignore[no-untyped-call]
    return ModelVersion(
        model=mv.name,
        version=str(mv.version),
        stage=mv.current_stage or "None",
        status=status,
        run_id=mv.run_id or None,
        tags=_tags(mv),
        created=int(mv.creation_timestamp) if mv.creation_timestamp else None,
        creator=mv.user_id or None,
        updated=int(mv.last_updated_timestamp) if mv.last_updated_timestamp else None,
        # The OSS server leaves `model_id` empty and keeps the link in the source (measured).
        model_id=getattr(mv, "model_id", None) or logged_model_id(mv.source),
    )
