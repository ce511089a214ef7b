"""`reconciler init [DIR]`: scaffold a promotion repository pinned to this version."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import click

from reconciler.cli.context import AppContext
from reconciler.cli.options import format_option
from reconciler.errors import ReconcilerError


@click.command()
@click.argument(
    "directory", default=".", metavar="[DIR]", type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--from-registry",
    is_flag=True,
    help="Then import: a pin for every model the registry serves now (as `reconciler import`).",
)
@click.option(
    "--workspace",
    metavar="NAME",
    help="The registry workspace (MLflow 3.10+ --enable-workspaces) this repository manages: "
    "written to environments/_defaults.yaml.",
)
@format_option(
    ["text", "json"],
    "json: {root, version, pinned_in, git_initialized, created, kept, imported}.",
)
@click.pass_obj
def init(
    obj: AppContext,
    directory: Path,
    from_registry: bool,
    workspace: str | None,
    output_format: str,
) -> None:
    """Make DIR (default: here) a promotion repository: environments/staging and production
    with their settings, the workflows (pull request plan, reconcile on merge, drift, promote,
    propose) running this version of reconciler through .github/actions/reconciler, CODEOWNERS,
    a pre-commit hook, the JSON Schemas and a README naming the secrets to set.

    Never overwrites: existing files are kept and listed, so running it again changes nothing.
    Creates DIR and a git repository when there is none.
    """
    from reconciler.scaffold import files
    from reconciler.scaffold.project import SECRETS, VERSION

    if workspace is not None and (problem := files.workspace_problem(workspace)):
        raise click.BadParameter(problem, param_hint="--workspace")
    root = directory.resolve()
    root.mkdir(parents=True, exist_ok=True)
    initialized = _git_init(root)
    top = _git_top(root)
    if top != root:
        # GitHub reads workflows from the repository's root only, and every command looks for
        # environments/ at the git root unless --root says otherwise.
        click.echo(
            f"note: {root} is inside the git repository {top}, not its root: GitHub runs "
            "workflows only from the root's .github/, and commands need --root there",
            err=True,
        )
    outcome = files.write(root, files.planned(workspace))
    imported = None
    if from_registry:
        imported = _import(obj, root)
    if output_format == "json":
        click.echo(
            json.dumps(
                {
                    "root": str(root),
                    "version": VERSION,
                    "pinned_in": list(files.PINNED_IN),
                    "git_initialized": initialized,
                    "created": outcome.created,
                    "kept": outcome.kept,
                    "imported": json.loads(imported[1]) if imported else None,
                },
                indent=2,
            )
        )
        return
    if initialized:
        click.echo(f"initialized a git repository in {root}")
    for name in outcome.created:
        click.echo(f"created  {name}")
    for name in outcome.kept:
        click.echo(f"kept     {name} (it exists; not overwritten)")
    if not outcome.created:
        click.echo("nothing to create: every file of the scaffold exists")
    if imported:
        click.echo(imported[0])
    click.echo(f"mlflow-reconciler {VERSION} is pinned in {' and '.join(files.PINNED_IN)}.\nNext:")
    if not from_registry:
        click.echo("  reconciler import            # pins for what the registry serves now")
    click.echo('  git add -A && git commit -m "Promotion repository"')
    click.echo("  set the repository secrets " + ", ".join(name for name, _ in SECRETS[:-1]))
    click.echo(f"    (and optionally {SECRETS[-1][0]}); README.md says which is which")
    click.echo(
        "  create the GitHub Environment `production` with reviewers, then open a pull request"
    )


def _git_init(root: Path) -> bool:
    """`git init` when `root` is in no git work tree (apply needs committed pins); True if so."""
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True, text=True
    )
    if inside.returncode == 0 and inside.stdout.strip() == "true":
        return False
    # On `main`, whatever git's own default: the workflows init writes run on pushes to main.
    init = ["git", "init", "-q", "-b", "main"]
    done = subprocess.run(init, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise ReconcilerError(f"git init in {root} failed: {done.stderr.strip()}")
    return True


def _git_top(root: Path) -> Path:
    done = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True
    )
    return Path(done.stdout.strip()).resolve() if done.returncode == 0 else root


def _import(obj: AppContext, root: Path) -> tuple[str, str]:
    """`reconciler import` into the new repository: its text and its JSON."""
    from reconciler import api
    from reconciler.render.importing import import_json, import_text

    registry = obj.registry()
    uri = str(getattr(registry, "display_uri", None) or obj.tracking_uri or "the default registry")
    result = api.import_pins(root, obj.connect, uri)
    return import_text(result), import_json(result)
