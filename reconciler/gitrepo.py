"""The one module that talks to git (through gitpython)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@contextmanager
def _open(path: Path) -> Iterator[Any]:
    """The repository holding `path`, or None outside git. Closed after use: gitpython keeps
    `git cat-file` helper processes per Repo until it is closed."""
    import git  # gitpython: imported here so `--help` does not pay for it

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        yield None
        return
    try:
        yield repo
    finally:
        repo.close()


def repository_root(start: Path) -> Path:
    """The work tree root of the git repository holding `start`, or `start` itself outside git."""
    with _open(start) as repo:
        work_tree = repo.working_tree_dir if repo is not None else None
    return Path(work_tree) if work_tree else start


def head_commit(root: Path) -> str | None:
    """The commit checked out at `root`, or None outside git or before the first commit."""
    with _open(root) as repo:
        try:
            return None if repo is None else str(repo.head.commit.hexsha)
        except ValueError:  # no commit yet
            return None


def is_ancestor(root: Path, ancestor: str, descendant: str) -> bool | None:
    """Whether `ancestor` is `descendant` or one of its ancestors; None when `ancestor` is not
    in this clone (a shallow or stale checkout cannot tell)."""
    import git

    with _open(root) as repo:
        if repo is None:
            return None
        try:
            return bool(repo.is_ancestor(repo.commit(ancestor), repo.commit(descendant)))
        except (ValueError, git.BadName, git.GitCommandError):
            return None


def changed_paths(root: Path, since: str, until: str) -> set[str] | None:
    """The paths under environments/ that differ between two commits (repository-relative, as
    pins name their files); None when git cannot tell (a commit not in this clone)."""
    import git

    with _open(root) as repo:
        if repo is None:
            return None
        try:
            output = repo.git.diff(
                "--name-only", "-z", "--no-renames", since, until, "--", "environments"
            )
        except (ValueError, git.GitCommandError):
            return None
    return {path for path in str(output).split("\0") if path}


def repository_id(root: Path) -> str:
    """What identifies this repository in every clone of it: its first (root) commit. Outside
    git, or before the first commit, the folder's path."""
    with _open(root) as repo:
        try:
            if repo is not None:
                roots = repo.git.rev_list("--max-parents=0", "HEAD").split()
                if roots:
                    return f"git:{sorted(roots)[0]}"
        except Exception:  # no commit yet, or git refuses: fall back to the path
            pass
    return f"path:{root.resolve()}"


def literal(path: str) -> str:
    """A git pathspec matching exactly `path`: without `:(literal)`, a model named `c*d` or
    `a[b]` would be a pattern matching other models' files."""
    return f":(literal){path}"


@dataclass(frozen=True)
class TreeState:
    """How the work tree's `folder` compares with the commit checked out."""

    repository: bool  # inside a git work tree
    head: str | None  # None: no commit yet
    changes: tuple[tuple[str, str], ...] = ()  # (path relative to root, how it differs)


def uncommitted(root: Path, folder: str, suffixes: tuple[str, ...]) -> TreeState:
    """Files under `root/folder` ending in `suffixes` that differ from HEAD: modified, staged,
    deleted, untracked, or present but ignored (the loader reads those too)."""
    with _open(root) as repo:
        if repo is None or repo.working_tree_dir is None:
            return TreeState(repository=False, head=None)
        try:
            head = str(repo.head.commit.hexsha)
        except ValueError:  # no commit yet
            return TreeState(repository=True, head=None)
        work_tree = Path(repo.working_tree_dir).resolve()
        relative = (root.resolve() / folder).relative_to(work_tree).as_posix()
        output = repo.git.status(
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignored=matching",
            "--no-renames",
            "--",
            literal(relative),
        )
    changes = []
    for item in output.split("\0"):
        if len(item) < 4 or not item.endswith(suffixes):
            continue
        code, path = item[:2], item[3:]
        shown = (work_tree / path).relative_to(root.resolve()).as_posix()
        changes.append((shown, _describe_status(code)))
    return TreeState(repository=True, head=head, changes=tuple(sorted(changes)))


def _describe_status(code: str) -> str:
    if code == "??":
        return "untracked"
    if code == "!!":
        return "ignored"
    if "D" in code:
        return "deleted"
    return "staged" if code[1] == " " else "modified"


def head_message(root: Path) -> str | None:
    """The message of the commit checked out at `root` (None outside git)."""
    with _open(root) as repo:
        try:
            message = None if repo is None else repo.head.commit.message
        except ValueError:
            return None
    if message is None:
        return None
    return message if isinstance(message, str) else message.decode("utf-8", "replace")


@dataclass(frozen=True)
class PinChange:
    """One commit's change to one environment's pin of a model (first-parent history)."""

    commit: str
    author: str
    date: datetime
    environment: str
    before: str | None  # the pinned version before the commit (None: no pin)
    after: str | None  # after it (None: the pin was removed)
    summary: str
    is_revert: bool


def pin_history(root: Path, model: str) -> list[PinChange]:
    """Every change to `environments/*/<model>.yaml` along the first-parent history of HEAD,
    oldest first: on a main branch, that is when each promotion landed."""
    with _open(root) as repo:
        if repo is None or head_commit(root) is None:
            return []
        return _pin_history(repo, root, model)


def _pin_history(repo: Any, root: Path, model: str) -> list[PinChange]:
    import git

    work_tree = Path(repo.working_tree_dir or root)
    environments = (root / "environments").resolve().relative_to(work_tree.resolve()).as_posix()
    specs = [f":(glob){environments}/*/{model}{suffix}" for suffix in (".yaml", ".yml")]
    changes = []
    for commit in repo.iter_commits(paths=specs, first_parent=True):
        parent = commit.parents[0] if commit.parents else None
        diffs = commit.diff(parent or git.NULL_TREE, paths=specs)
        touched = {path for diff in diffs for path in (diff.a_path, diff.b_path) if path}
        message = commit.message if isinstance(commit.message, str) else commit.message.decode()
        for path in sorted(touched):
            before = _version_at(parent, path) if parent else None
            after = _version_at(commit, path)
            if before == after:
                continue
            changes.append(
                PinChange(
                    commit=commit.hexsha,
                    author=str(commit.author.name),
                    date=commit.committed_datetime,
                    environment=Path(path).parent.name,
                    before=before,
                    after=after,
                    summary=message.strip().splitlines()[0] if message.strip() else "",
                    is_revert=message.startswith('Revert "') or "This reverts commit" in message,
                )
            )
    changes.reverse()
    return changes


def _version_at(commit: Any, path: str) -> str | None:
    from reconciler.documents import parse_yaml
    from reconciler.versions import parse_version

    try:
        blob = commit.tree / path
        parsed = parse_yaml(blob.data_stream.read().decode("utf-8"))
        # The text as written, by the one rule: YAML 1.1 would read `010` as v8.
        return parse_version(parsed.scalars[("version",)].text)
    except Exception:  # missing, unreadable or invalid at that commit: no usable pin
        return None


def checkout_new_branch(root: Path, name: str) -> None:
    """Create branch `name` at HEAD and switch to it (refused if it exists)."""
    with _open(root) as repo:
        if repo is None:
            raise ValueError("not a git repository")
        if name in [head.name for head in repo.heads]:
            raise ValueError(f"branch {name!r} already exists")
        repo.git.checkout("-b", name)


def commit_files(root: Path, paths: list[Path], message: str) -> str:
    """Commit exactly `paths` with `message`; returns the new commit."""
    with _open(root) as repo:
        if repo is None:
            raise ValueError("not a git repository")
        work_tree = Path(repo.working_tree_dir or root).resolve()
        relative = [str(p.resolve().relative_to(work_tree)) for p in paths]
        repo.index.add(relative)
        repo.git.commit("-m", message, "--", *relative)
        return str(repo.head.commit.hexsha)
