"""The one module that talks to git (through gitpython)."""

from __future__ import annotations

from pathlib import Path


def repository_root(start: Path) -> Path:
    """The work tree root of the git repository holding `start`, or `start` itself outside git."""
    import git  # gitpython: imported here so `--help` does not pay for it

    try:
        repo = git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return start
    work_tree = repo.working_tree_dir
    return Path(work_tree) if work_tree else start


def head_commit(root: Path) -> str | None:
    """The commit checked out at `root`, or None outside git or before the first commit."""
    import git

    try:
        return str(git.Repo(root, search_parent_directories=True).head.commit.hexsha)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None


def is_ancestor(root: Path, ancestor: str, descendant: str) -> bool | None:
    """Whether `ancestor` is `descendant` or one of its ancestors; None when `ancestor` is not
    in this clone (a shallow or stale checkout cannot tell)."""
    import git

    repo = git.Repo(root, search_parent_directories=True)
    try:
        older = repo.commit(ancestor)
        newer = repo.commit(descendant)
        return bool(repo.is_ancestor(older, newer))
    except (ValueError, git.BadName, git.GitCommandError):
        return None
