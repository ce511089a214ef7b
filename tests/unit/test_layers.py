"""The house by subject: each folder is a layer, and no import runs from a lower layer to a
higher one (README "Layout"). Read from the source with `ast`, lazy imports inside functions
included, so a shortcut taken for speed still shows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"

# Lowest first. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("reconciler.errors", "reconciler.redact")),
    ("pins", ("reconciler.pins",)),
    ("registry and git", ("reconciler.registry", "reconciler.gitrepo")),
    ("records", ("reconciler.records",)),
    ("planning", ("reconciler.planning",)),
    ("apply", ("reconciler.apply",)),
    (
        "features",
        (
            "reconciler.importing",
            "reconciler.promotion",
            "reconciler.serving",
            # `init`'s scaffolding (templates, schemas, the version).
            "reconciler.scaffold",
        ),
    ),
    ("render", ("reconciler.render",)),
    # The workflows' glue: summaries and pull requests in markdown, escaped as render does.
    ("ci", ("reconciler.ci",)),
    ("api", ("reconciler.api",)),
    ("cli", ("reconciler.cli", "reconciler.__main__")),
]
MAX_LINES = 500
MAX_CLI_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    for rank, (_name, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found.append((node.lineno, node.module))
            # `from reconciler.apply import executor` imports the module reconciler.apply.executor
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_every_module_has_a_layer() -> None:
    modules = _modules()
    assert "reconciler.cli.main" in modules  # the walk found the package
    for module in modules:
        if module != "reconciler":
            _layer(module)


@pytest.mark.parametrize("module", sorted(m for m in _modules() if m != "reconciler"))
def test_no_import_runs_up_the_house(module: str) -> None:
    modules = _modules()
    mine = _layer(module)
    upward = []
    for line, imported in _imports(modules[module]):
        if imported not in modules or imported == "reconciler":
            continue  # a name from a module, or outside the package
        theirs = _layer(imported)
        if theirs > mine:
            upward.append(f"{module}:{line} imports {imported} ({LAYERS[theirs][0]})")
    assert not upward, f"{module} ({LAYERS[mine][0]}) reaches up:\n" + "\n".join(upward)


def test_pins_and_planning_reach_no_apply_cli_render_or_mlflow_adapter() -> None:
    """The issue's rule, said directly (the layer order implies it; this names it)."""
    modules = _modules()
    forbidden = (
        "reconciler.apply",
        "reconciler.cli",
        "reconciler.render",
        "reconciler.registry.mlflow_registry",
    )
    offenders = [
        f"{module}:{line} imports {imported}"
        for module, path in modules.items()
        if module.startswith(("reconciler.pins", "reconciler.planning"))
        for line, imported in _imports(path)
        if imported.startswith(forbidden)
    ]
    assert offenders == []


def test_only_the_adapter_imports_mlflow() -> None:
    importers = {
        module
        for module, path in _modules().items()
        for _line, imported in _imports(path)
        if imported == "mlflow" or imported.startswith("mlflow.")
    }
    # The adapter, and its copy half (issue 17): MLflow's artifact repositories would have grown
    # the adapter module past the line limit; it is mixed into MlflowRegistry, not used alone.
    assert importers == {
        "reconciler.registry.mlflow_registry",
        "reconciler.registry.mlflow_copying",
    }


def test_no_module_is_a_long_read() -> None:
    too_long = {}
    for module, path in _modules().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        limit = MAX_CLI_LINES if module.startswith("reconciler.cli") else MAX_LINES
        if lines > limit:
            too_long[module] = lines
    assert too_long == {}
