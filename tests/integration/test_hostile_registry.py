"""Issue 15 §7 and the smaller §9 items on a real `mlflow server`: a registry holding a model
name built to forge the plan comment; a READY version beside one still registering; a name a
pin cannot hold; a CRLF pin promoted; a removed pin's retirement previewed for one model; and
environments/ as a git submodule.

`import` reads the whole registry and the hostile name shows in every plan, so these tests use
a server of their own: the session server is shared.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.markdown import render
from tests.support.server import start_or_fail, stop_server

pytestmark = pytest.mark.integration

# MLflow 3.17.2 refuses only `/` and `:` in a name (measured): this one holds a newline, a
# heading, backticks, `|`, an unclosed `<details>`, an ANSI escape and a bidi override.
HOSTILE = (
    "evil\n### Registry plan — in sync\n\nno changes, approve `x` | y "
    "<details><summary>approve\x1b[31m\u202e"
)
HOSTILE_SHOWN = (
    "evil\\n### Registry plan — in sync\\n\\nno changes, approve `x` | y "
    "<details><summary>approve\\x1b[31m\\u202e"
)


@dataclass(frozen=True)
class Server:
    url: str
    database: Path  # its sqlite store: what no MLflow API can do (a version not READY) is set here


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("hostile-server")
    url, process = start_or_fail(workdir)
    try:
        yield Server(url, workdir / "mlflow.db")
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def seeder(server: Server) -> Seeder:
    seeded = Seeder(server.url)
    seeded.model(HOSTILE, [0.5])
    seeded.stage(HOSTILE, "1", PRODUCTION)
    return seeded


def printable(output: str) -> bool:
    return all(c.isprintable() or c == "\n" for c in output)


def test_a_hostile_unmanaged_name_cannot_forge_the_plan(
    tmp_path: Path, server: Server, seeder: Seeder
) -> None:
    churn = seeder.name("churn")
    seeder.model(churn, [0.9])
    seeder.stage(churn, "1", PRODUCTION)
    repo = Repo(tmp_path / "repo")
    repo.pin("production", churn, 1)
    repo.commit("pin")
    run = make_runner(repo.root, tracking_uri=server.url)

    markdown = run("plan", "--format", "markdown")
    assert markdown.exit_code == 0, markdown.stderr
    assert [line for line in markdown.stdout.splitlines() if line.startswith("#")] == [
        "### Registry plan: in sync"
    ]
    shown = render(markdown.stdout)
    assert shown.headings == [("h3", "Registry plan: in sync")]
    assert shown.tags["details"] == 1  # ours, around the unmanaged table
    main, unmanaged = shown.tables
    assert set(main) == {5}
    assert set(unmanaged) == {3}
    assert HOSTILE_SHOWN in shown.codes

    text = run("plan")
    assert printable(text.stdout)
    assert f"  ? production: {HOSTILE_SHOWN} Production v1" in text.stdout.splitlines()
    document = json.loads(run("plan", "--format", "json").stdout)
    assert HOSTILE in [u["model"] for u in document["unmanaged"]]

    imported = run("import", "--env", "production")
    assert imported.exit_code == 0, imported.stderr
    assert printable(imported.stdout)
    (line,) = [line for line in imported.stdout.splitlines() if HOSTILE_SHOWN in line]
    assert line.startswith(f"  - refused environments/production/{HOSTILE_SHOWN}.yaml: ")


def test_import_pins_the_ready_version_beside_one_still_registering(
    tmp_path: Path, server: Server, seeder: Seeder
) -> None:
    model = seeder.name("registering")
    seeder.model(model, [0.8, 0.9])
    seeder.stage(model, "1", PRODUCTION)
    time.sleep(0.01)  # last_updated_timestamp is in milliseconds: v2 moves in last
    seeder.stage(model, "2", PRODUCTION)
    # No MLflow API leaves a version PENDING_REGISTRATION on an OSS server (registries such as
    # Databricks do, while a version is copied): set it in the server's own store.
    with sqlite3.connect(server.database) as db:
        db.execute(
            "UPDATE model_versions SET status = 'PENDING_REGISTRATION' "
            "WHERE name = ? AND version = 2",
            (model,),
        )
    repo = Repo(tmp_path / "repo")
    run = make_runner(repo.root, tracking_uri=server.url)
    result = run("import", "--model", model, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["skipped"] == []
    (pin,) = document["pins"]
    assert (pin["model"], pin["version"], pin["outcome"]) == (model, "1", "written")
    assert pin["notes"] == [
        "Production also holds v2 (PENDING_REGISTRATION, not READY, so not pinned): plan will "
        "archive it"
    ]


def test_import_says_what_is_wrong_with_a_spaced_name(
    tmp_path: Path, server: Server, seeder: Seeder
) -> None:
    model = f"  {seeder.name('spaced')}  "
    seeder.model(model, [0.5])
    seeder.stage(model, "1", PRODUCTION)
    repo = Repo(tmp_path / "repo")
    run = make_runner(repo.root, tracking_uri=server.url)
    (pin,) = json.loads(run("import", "--model", model, "--format", "json").stdout)["pins"]
    assert pin["outcome"] == "refused"
    assert pin["reason"] == (
        f"model: {model!r} starts and ends with whitespace, which a pin's model name cannot (nor "
        "its file name): rename the model in MLflow to manage it"
    )


def test_promote_keeps_a_crlf_pin_crlf(tmp_path: Path, server: Server, seeder: Seeder) -> None:
    model = seeder.name("windows")
    seeder.model(model, [0.8, 0.9])
    repo = Repo(tmp_path / "repo")
    path = repo.root / "environments" / "production" / f"{model}.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(f"# written on Windows\r\nmodel: {model}\r\nversion: 1\r\n".encode())
    run = make_runner(repo.root, tracking_uri=server.url)
    result = run("promote", model, "--to", "production", "--version", "2")
    assert result.exit_code == 0, result.stderr
    assert path.read_bytes() == f"# written on Windows\r\nmodel: {model}\r\nversion: 2\r\n".encode()


def test_plan_previews_the_retirement_of_one_removed_pin(
    tmp_path: Path, server: Server, seeder: Seeder
) -> None:
    model, kept = seeder.name("retiring"), seeder.name("kept")
    for name in (model, kept):
        seeder.model(name, [0.8])
    repo = Repo(tmp_path / "repo")
    repo.pin("production", model, 1)
    repo.pin("production", kept, 1)
    run = make_runner(repo.root, tracking_uri=server.url)
    assert run("apply").exit_code == 0
    (repo.root / "environments" / "production" / f"{model}.yaml").unlink()
    repo.commit("retire")
    preview = run("plan", "--model", model)
    assert preview.exit_code == 0, preview.stderr
    assert (
        f"  - production: {model}: retire v1 from Production [needs --prune, or prune: true in "
        "its settings]" in preview.stdout.splitlines()
    )
    assert kept not in preview.stdout
    result = run("apply", "--model", model, "--prune")
    assert result.exit_code == 0, result.stderr
    assert seeder.stages(model) == {"1": ARCHIVED}
    assert seeder.stages(kept) == {"1": PRODUCTION}


def test_environments_as_a_submodule_is_refused_before_anything_is_read(
    tmp_path: Path, server: Server, seeder: Seeder
) -> None:
    model = seeder.name("submodule")
    seeder.model(model, [0.8])
    pins = Repo(tmp_path / "pins")
    pins.write(f"production/{model}.yaml", f"model: {model}\nversion: 1\n")
    pins.commit("pins")
    repo = Repo(tmp_path / "repo")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q",
             str(pins.root), "environments")  # fmt: skip
    repo.commit("pins as a submodule")
    run = make_runner(repo.root, tracking_uri=server.url)
    for command in ("plan", "apply"):
        result = run(command)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: environments/ is a git submodule"), command
    assert seeder.stages(model) == {"1": "None"}
