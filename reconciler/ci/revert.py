"""A pull request that reverts the merge whose pins serving did not follow (the GitOps rollback).
Never pushes to the default branch: the revert goes on its own branch, and the pull request's
review and merge are the rollback.

No pull request is opened unless a `reconciler verify --format json` report names an endpoint
serving the wrong version or failing (a verify that could not start, e.g. a missing secret, is
not the merge's fault; nor is an endpoint a signal stopped verify on, `"interrupted": true`: the
job was cancelled before serving had its time).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from reconciler.ci.github import gh
from reconciler.render.escape import md_cell, md_code, md_text

MARKER = "<!-- reconciler-serving-revert -->"
ZERO_SHA = "0" * 40


def failures(reports: list[Path]) -> list[dict[str, Any]]:
    """The failing endpoints of every readable report."""
    found = []
    for report in reports:
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for endpoint in data.get("endpoints", []) if isinstance(data, dict) else []:
            if (
                isinstance(endpoint, dict)
                and not endpoint.get("ok")
                and not endpoint.get("interrupted")
            ):
                found.append(endpoint)
    return found


def body(commits: list[str], failed: list[dict[str, Any]], run_url: str | None) -> str:
    rows = [
        "| Environment | Model | Pinned | Served | Error | Endpoint |",
        "|---|---|---|---|---|---|",
    ]
    for endpoint in failed:
        served = endpoint.get("served_version") or "-"
        cells = [
            md_text(str(endpoint.get("environment"))),
            md_code(str(endpoint.get("model"))),
            md_text(f"v{endpoint.get('expected_version')}"),
            md_text(f"v{served}" if served != "-" else served),
            md_text(str(endpoint.get("error"))),
            md_code(str(endpoint.get("url"))),
        ]
        rows.append("| " + " | ".join(md_cell(cell) for cell in cells) + " |")
    reverted = ", ".join(c[:12] for c in commits)
    where = f"\n\nFound by [the reconcile run]({run_url})." if run_url else ""
    return (
        f"{MARKER}\nServing did not follow the pins applied from {reverted}: `reconciler verify` "
        "failed after the apply. Merging this pull request reverts the pins, and the next apply "
        "rolls the registry back to what served before. If serving is only slow, close it and "
        "re-run the workflow.\n\n" + "\n".join(rows) + where
    )


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def commits_to_revert(commit: str, since: str | None, cwd: Path) -> list[str]:
    """The commits the push brought, newest first (first parent: a merge counts as one)."""
    if since and since != ZERO_SHA:
        listed = _git("rev-list", "--first-parent", f"{since}..{commit}", cwd=cwd).split()
        if listed:
            return listed
    return [_git("rev-parse", commit, cwd=cwd)]


def revert_branch(commits: list[str], base: str, cwd: Path) -> str:
    """Commit the revert of `commits` on a new branch off the default branch as it is now (it may
    have moved on since the apply) and push that branch; its name."""
    branch = f"revert/{commits[0][:12]}"
    if branch == base:  # cannot happen by construction; the promise is worth a check
        raise RuntimeError("refusing to push to the default branch")
    if _git("ls-remote", "--heads", "origin", f"refs/heads/{branch}", cwd=cwd):
        # A re-run of the workflow: the revert is already pushed (its pull request gets a
        # comment). A new revert commit would not fast-forward and the push would fail.
        return branch
    _git("fetch", "--quiet", "origin", base, cwd=cwd)
    _git("switch", "--quiet", "--force-create", branch, "FETCH_HEAD", cwd=cwd)
    for commit in commits:
        parents = _git("rev-list", "--parents", "-n", "1", commit, cwd=cwd).split()[1:]
        mainline = ["-m", "1"] if len(parents) > 1 else []
        try:
            _git("revert", "--no-commit", *mainline, commit, cwd=cwd)
        except RuntimeError:
            _git("revert", "--abort", cwd=cwd)
            raise RuntimeError(
                f"{commit[:12]} does not revert cleanly (a later change touched the same pins): "
                "roll back by hand with `reconciler promote --version`"
            ) from None
    shown = ", ".join(c[:12] for c in commits)
    _git("commit", "--quiet", "-m", f"Revert {shown}: serving did not follow the pins", cwd=cwd)
    _git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=cwd)
    return branch


def open_pull_request(repo: str, branch: str, base: str, text: str, command: str = "gh") -> str:
    """Create the pull request, or comment on the one already open for this revert."""
    listed = gh("pr", "list", "--repo", repo, "--head", branch, "--state", "open",
                "--json", "number", command=command)  # fmt: skip
    for pull in json.loads(listed or "[]"):
        gh("pr", "comment", str(pull["number"]), "--repo", repo, "--body", text, command=command)
        return f"commented on #{pull['number']}"
    title = f"Revert {branch.removeprefix('revert/')}: serving did not follow the pins"
    gh("pr", "create", "--repo", repo, "--base", base, "--head", branch,
       "--title", title, "--body", text, command=command)  # fmt: skip
    return "created"


def revert(
    reports: list[Path],
    repo: str,
    commit: str,
    since: str | None,
    base: str,
    run_url: str | None,
    cwd: Path,
    command: str = "gh",
) -> str:
    """The whole rollback proposal; what was done. RuntimeError when the revert cannot be made
    (nothing pushed then)."""
    failed = failures(reports)
    if not failed:
        return "no endpoint failed in the verify reports: nothing to revert"
    commits = commits_to_revert(commit, since, cwd)
    branch = revert_branch(commits, base, cwd)
    outcome = open_pull_request(repo, branch, base, body(commits, failed, run_url), command)
    return f"revert pull request {outcome} ({branch})"
