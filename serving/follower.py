"""Keeps the version a stage or alias names loaded, and swaps to a new one only once it is whole.

Each round asks the registry which version the stage (or alias) names now. If it differs from
the one serving, that version is loaded completely (`models:/NAME/<version>`: exactly the version
resolved, so a stage moving again mid-load cannot give us a model other than the one we report),
and only then replaces the served one in a single assignment. Requests read `current` once, so
each sees the old model or the new one, never a half-loaded one. A failed load keeps the old
model serving and is shown in `/health` as `reload_error`. A stage or alias that names no version
any more (the model was retired, the stage emptied) stops the serving: predicting with a version
the registry no longer names would be serving what nobody pinned.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Loader = Callable[[str], Any]  # a models:/ URI -> a loaded pyfunc model


@dataclass(frozen=True)
class Loaded:
    version: str
    run_id: str | None
    model: Any  # mlflow.pyfunc.PyFuncModel


class Follower:
    def __init__(
        self,
        client: Any,  # mlflow.MlflowClient
        name: str,
        stage: str | None = None,
        alias: str | None = None,
        load: Loader | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        if (stage is None) == (alias is None):
            raise ValueError("follow exactly one of a stage or an alias")
        self.client = client
        self.name = name
        self.stage = stage
        self.alias = alias
        self._load = load or _pyfunc_load
        self._log = log
        self.current: Loaded | None = None  # replaced whole, never mutated
        self.reload_error: str | None = None
        self.names_none = False  # the stage or alias named no version at the last look

    @property
    def follows(self) -> str:
        return f"{self.name}/{self.stage}" if self.stage else f"{self.name}@{self.alias}"

    def resolve(self) -> tuple[str, str | None] | None:
        """(version, run_id) the stage or alias names now; None when it names none."""
        if self.alias is not None:
            try:
                found = self.client.get_model_version_by_alias(self.name, self.alias)
            except Exception as error:
                if "RESOURCE_DOES_NOT_EXIST" in str(error) or "not found" in str(error).lower():
                    return None
                raise
            return str(found.version), found.run_id
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still served
            latest = self.client.get_latest_versions(self.name, stages=[self.stage])
        if not latest:
            return None
        newest = max(latest, key=lambda mv: int(mv.version))
        return str(newest.version), newest.run_id

    def refresh(self) -> bool:
        """One round: load and swap if the registry names another version. True if swapped."""
        named = self.resolve()
        if named is None:
            retired, self.current = self.current, None
            self.reload_error = f"{self.follows} names no version"
            self.names_none = True
            if retired is not None:
                self._log(
                    f"serving {self.follows}: names no version; stopped serving v{retired.version}"
                )
            return False
        self.names_none = False
        version, run_id = named
        current = self.current
        if current is not None and current.version == version:
            self.reload_error = None
            return False
        model = self._load(f"models:/{self.name}/{version}")  # whole, before anyone sees it
        self.current = Loaded(version, run_id, model)
        self.reload_error = None
        was = f" (was v{current.version})" if current else ""
        self._log(f"serving {self.follows}: loaded v{version}{was}")
        return True

    def follow(self, stop: threading.Event, interval: float) -> None:
        """Refresh every `interval` seconds until `stop` is set; errors never stop serving."""
        while True:
            try:
                self.refresh()
            except Exception as error:  # the registry or the load failed: keep what serves
                self.reload_error = f"{type(error).__name__}: {error}"
                self._log(f"serving {self.follows}: reload failed: {self.reload_error}")
            if stop.wait(interval):
                return


def _pyfunc_load(uri: str) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(uri)
