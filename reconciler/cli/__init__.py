"""The command line, one module per command (or pair of commands), around one group that is the
only exit path (group.py). `reconciler = "reconciler.cli:main"`."""

from reconciler.cli.context import AppContext
from reconciler.cli.main import cli, main
from reconciler.render.errors import github_annotation

__all__ = ["AppContext", "cli", "github_annotation", "main"]
