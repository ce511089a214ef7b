"""The one module that talks to git (through gitpython)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.errors import ShallowClone, UsageError


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


def is_shallow(root: Path) -> bool:
    with _open(root) as repo:
        return repo is not None and _shallow(repo)


def _shallow(repo: Any) -> bool:
    return bool(repo.git.rev_parse("--is-shallow-repository").strip() == "true")


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


def check_pins_tracked(root: Path, folder: str = "environments") -> None:
    """Refuse (UsageError) when `root/folder` is a repository of its own: a git submodule (a
    gitlink in the commit checked out, or a checkout whose `.git` is a file) or a clone inside
    the work tree. The commits that fence and audit an apply, `git status` and the history of
    pins would then be the outer repository's, which sees only a pointer or nothing at all."""
    marker = root / folder / ".git"
    if marker.is_file() or _gitlink(root, folder):
        what = "a git submodule (a repository of its own)"
        sees = "holds only a pointer to the submodule's commit"
    elif marker.is_dir():
        what = "a git repository of its own"
        sees = "does not track its files"
    else:
        return
    raise UsageError(
        f"{folder}/ is {what}: reconciler fences, audits and reads the history of pins by the "
        f"commits of the repository it runs in, which {sees}. Keep the pins in this repository "
        f"({folder}/ as a plain folder). Nothing was changed"
    )


def _gitlink(root: Path, folder: str) -> bool:
    """Whether the commit checked out records `folder` as a submodule (checked out or not)."""
    with _open(root) as repo:
        if repo is None or repo.working_tree_dir is None:
            return False
        try:
            work_tree = Path(repo.working_tree_dir).resolve()
            path = (root.resolve() / folder).relative_to(work_tree).as_posix()
            return bool((repo.head.commit.tree / path).type == "submodule")
        except (KeyError, ValueError):  # not in the commit, no commit yet, or outside the tree
            return False


def repository_name(root: Path) -> str | None:
    """How people know this repository, for the ownership records other repositories' refusals
    name: its `origin` remote's URL, credentials removed (actions/checkout sets it to
    https://github.com/OWNER/REPO); None without one."""
    from reconciler.redact import redact_uri

    with _open(root) as repo:
        try:
            url = repo.git.remote("get-url", "origin") if repo is not None else ""
        except Exception:  # no such remote, or git refuses: the records name no one
            return None
    url = redact_uri(str(url).strip()).replace("***@", "")
    # One line, short, nothing a terminal would act on: a tag value others will print.
    return "".join(c for c in url if c.isprintable())[:200] or None


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
        listed = {}
        for item in output.split("\0"):
            if len(item) >= 4 and item.endswith(suffixes):
                listed[item[3:]] = _describe_status(item[:2])
        for path in _contents_differing(repo.head.commit.tree, work_tree, relative, suffixes):
            listed.setdefault(path, "modified, hidden from git status")
    changes = [
        ((work_tree / path).relative_to(root.resolve()).as_posix(), how)
        for path, how in listed.items()
    ]
    return TreeState(repository=True, head=head, changes=tuple(sorted(changes)))


def _contents_differing(
    tree: Any, work_tree: Path, relative: str, suffixes: tuple[str, ...]
) -> list[str]:
    """Tracked files whose bytes on disk differ from the commit's (line endings aside).

    `git status` trusts the index, and the index can be told to look away
    (`update-index --assume-unchanged`, `--skip-worktree`) or compare through a clean filter;
    the loader reads the bytes on disk. So compare those with the committed blobs."""
    try:
        folder = tree / relative if relative not in ("", ".") else tree
    except KeyError:
        return []
    differing = []
    for blob in folder.traverse():
        if blob.type != "blob" or not blob.path.endswith(suffixes):
            continue
        file = work_tree / blob.path
        if file.is_symlink():
            on_disk = os.readlink(file).encode()
        elif file.is_file():
            on_disk = file.read_bytes()
        else:
            continue  # deleted: git status says so
        if _lines(on_disk) != _lines(blob.data_stream.read()):
            differing.append(str(blob.path))
    return differing


def _lines(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


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
    oldest first: on a main branch, that is when each promotion landed. Raises ShallowClone
    when the clone cannot show all of it."""
    with _open(root) as repo:
        if repo is None or head_commit(root) is None:
            return []
        if _shallow(repo):
            raise ShallowClone(
                f"history of {model!r} is incomplete: this is a shallow clone, so commits before "
                "the shallow boundary are not here. Fetch them with `git fetch --unshallow` "
                "(actions/checkout: fetch-depth: 0)"
            )
        return _pin_history(repo, root, model)


def _environments_path(repo: Any, root: Path) -> str:
    work_tree = Path(repo.working_tree_dir or root)
    return (root / "environments").resolve().relative_to(work_tree.resolve()).as_posix()


def _pin_history(repo: Any, root: Path, model: str) -> list[PinChange]:
    environments = _environments_path(repo, root)
    names = {f"{model}{suffix}" for suffix in (".yaml", ".yml")}
    # One literal pathspec for the folder, and the model's files picked by exact name: no
    # pattern is ever built from a model name (a model `c*d` must not read `cZd`'s history).
    log = repo.git.log(
        "--first-parent", "--no-renames", "--name-only", "-z", "--format=commit %H",
        "--", literal(environments),
    )  # fmt: skip
    touched: dict[str, list[str]] = {}
    current: list[str] = []
    for token in log.split("\0"):
        token = token.lstrip("\n")
        if token.startswith("commit "):
            current = touched.setdefault(token.removeprefix("commit "), [])
        elif token:
            relative = token.removeprefix(f"{environments}/")
            parts = relative.split("/")
            if relative != token and len(parts) == 2 and parts[1] in names:
                current.append(token)
    changes = []
    for hexsha, paths in touched.items():
        if not paths:
            continue
        commit = repo.commit(hexsha)
        parent = commit.parents[0] if commit.parents else None
        message = commit.message if isinstance(commit.message, str) else commit.message.decode()
        for path in sorted(paths):
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


class Lineage:
    """Ancestry and old pins of one repository, for matching audit records to commits."""

    def __init__(self, repo: Any, root: Path) -> None:
        self._repo = repo
        self._environments = _environments_path(repo, root) if repo is not None else ""
        self._ancestry: dict[tuple[str, str], bool] = {}

    def descends(self, descendant: str, ancestor: str) -> bool:
        """Whether `descendant` is `ancestor` or a later commit built on it (False when either
        is not in this clone)."""
        import git

        if self._repo is None:
            return False
        key = (descendant, ancestor)
        if key not in self._ancestry:
            try:
                self._ancestry[key] = bool(
                    self._repo.is_ancestor(
                        self._repo.commit(ancestor), self._repo.commit(descendant)
                    )
                )
            except (ValueError, git.BadName, git.GitCommandError):
                self._ancestry[key] = False
        return self._ancestry[key]

    def pinned(self, commit: str, environment: str, model: str) -> str | None:
        """The version `environment` pins for `model` at `commit` (None: no pin, or unknown)."""
        if self._repo is None:
            return None
        try:
            at = self._repo.commit(commit)
        except Exception:  # not in this clone
            return None
        for suffix in (".yaml", ".yml"):
            version = _version_at(at, f"{self._environments}/{environment}/{model}{suffix}")
            if version is not None:
                return version
        return None


@contextmanager
def lineage(root: Path) -> Iterator[Lineage]:
    with _open(root) as repo:
        yield Lineage(repo, root)


def _version_at(commit: Any, path: str) -> str | None:
    from reconciler.pins.documents import parse_yaml
    from reconciler.pins.versions import parse_version

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
        if name.startswith("-") or not _valid_branch_name(repo, name):
            # Before anything else: a name git refuses would fail half-way as a GitCommandError.
            raise ValueError(
                "git does not accept it as a branch name (git check-ref-format --branch)"
            )
        if name in [head.name for head in repo.heads]:
            raise ValueError(f"branch {name!r} already exists")
        repo.git.checkout("-b", name)


def _valid_branch_name(repo: Any, name: str) -> bool:
    from git.exc import GitCommandError

    try:
        repo.git.check_ref_format("--branch", name)
    except GitCommandError:
        return False
    return True


def commit_files(root: Path, paths: list[Path], message: str) -> str:
    """Commit exactly `paths` with `message`; returns the new commit."""
    with _open(root) as repo:
        if repo is None:
            raise ValueError("not a git repository")
        work_tree = Path(repo.working_tree_dir or root).resolve()
        relative = [str(p.resolve().relative_to(work_tree)) for p in paths]
        specs = [literal(path) for path in relative]  # a model `c*d` commits only its pin
        repo.git.add("--", *specs)
        repo.git.commit("-m", message, "--", *specs)
        return str(repo.head.commit.hexsha)
