"""`reconciler ci ...`: what the workflows and the composite action run besides the commands
themselves (reconciler/ci/). Step outputs go to $GITHUB_OUTPUT, summaries to
$GITHUB_STEP_SUMMARY, GitHub is reached through `gh`; each prints what it did."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.ci.action import COMMANDS
from reconciler.errors import ReconcilerError, Reported

_FILE = click.Path(path_type=Path)
_REPO = click.option("--repo", required=True, metavar="OWNER/NAME", help="The GitHub repository.")
_RUN_URL = click.option("--run-url", metavar="URL", help="The workflow run, linked from the text.")
# Tests stand in for the installed command; a workflow never sets it.
_RECONCILER = click.option(
    "--reconciler", "reconciler_command", hidden=True, help="The reconciler command to run."
)


def _reconciler(command: str | None) -> list[str]:
    return [command] if command else [sys.executable, "-m", "reconciler"]


class _CiGroup(click.Group):
    """These commands read files and `gh` answers a workflow made: one that is not what it
    should be (missing, not JSON, the wrong shape) is a failed step, exit 1, not a bug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # the reader went away: the main group says so
        except json.JSONDecodeError as error:
            raise ReconcilerError(f"ci {ctx.invoked_subcommand}: not JSON: {error}") from None
        except OSError as error:
            raise ReconcilerError(f"ci {ctx.invoked_subcommand}: {error}") from None
        except (KeyError, TypeError, AttributeError) as error:
            raise ReconcilerError(
                f"ci {ctx.invoked_subcommand}: its input is not of the expected shape "
                f"({type(error).__name__}: {error})"
            ) from None


@click.group(cls=_CiGroup)
def ci() -> None:
    """The glue of the GitHub workflows and action (run inside a workflow step)."""


@ci.command(name="sticky-comment")
@click.argument("plan", type=_FILE)
@click.option("--pr", type=int, required=True, help="The pull request number.")
@_REPO
@_RUN_URL
@click.option("--exit-code", type=int, default=0, help="The plan's exit code.")
@click.option("--errors", type=_FILE, help="The plan's stderr.")
def sticky_comment(
    plan: Path, pr: int, repo: str, run_url: str | None, exit_code: int, errors: Path | None
) -> None:
    """Post PLAN (markdown) as the pull request's one plan comment, updated in place; a plan that
    failed (exit code other than 0 and 2) gets a comment saying why, from --errors."""
    from reconciler.ci import comment

    outcome = comment.post(plan, errors, exit_code, pr, repo, run_url)
    click.echo(f"plan comment {outcome} on #{pr}")


@ci.command(name="drift-issue")
@click.argument("plan", type=_FILE)
@_REPO
@_RUN_URL
@click.option("--exit-code", type=int, default=2, help="The plan's exit code.")
def drift_issue(plan: Path, repo: str, run_url: str | None, exit_code: int) -> None:
    """The drift check's verdict from `plan --detailed-exitcode`: 0 in sync; 2 drift (open or
    update the one drift issue, exit 1); any other code is an error of the check (exit with it)."""
    from reconciler.ci import drift

    outcome = drift.report(plan, exit_code, repo, run_url)
    for line in outcome.lines:
        click.echo(line)
    if outcome.exit_code:
        raise Reported(None, outcome.exit_code)


@ci.command(name="promotion-order")
@click.argument("validated", type=_FILE)
def promotion_order(validated: Path) -> None:
    """Outputs `before` and `gated` (JSON lists) from VALIDATED (`validate --format json`): the
    environments before the first Production-stage one, and that one with all after it."""
    from reconciler.ci import order
    from reconciler.ci.github import set_outputs

    environments = order.read_validated(validated)
    if environments is None:
        click.echo("::error title=reconcile::reconciler validate gave no environments")
        raise Reported(None)
    before, gated = order.split(environments)
    set_outputs({"before": json.dumps(before), "gated": json.dumps(gated)})
    click.echo(f"promotion order: {' → '.join([*before, *gated]) or 'no environments'}")
    click.echo(f"behind the production GitHub Environment: {', '.join(gated) or 'none'}")


@ci.command(name="apply-in-order")
@click.argument("environments")
@click.option("--out-dir", type=_FILE, default=Path(), help="Where apply-ENV.json files go.")
@click.option("--verify", is_flag=True, help="Run `verify --env ENV` after each apply.")
@_RECONCILER
def apply_in_order(
    environments: str, out_dir: Path, verify: bool, reconciler_command: str | None
) -> None:
    """Apply ENVIRONMENTS (a JSON list, in promotion order) one at a time, each to
    OUT_DIR/apply-ENV.json (and verify-ENV.json); stop at the first failure, exit with its code."""
    from reconciler.ci import order

    listed = json.loads(environments)
    if not isinstance(listed, list):
        raise ReconcilerError("ci apply-in-order: ENVIRONMENTS is a JSON list of environments")
    names = [str(name) for name in listed]
    out_dir.mkdir(parents=True, exist_ok=True)
    echo = _flushed_echo
    code = order.apply_in_order(names, _reconciler(reconciler_command), out_dir, verify, echo)
    if code:
        raise Reported(None, code)


@ci.command(name="apply-outputs")
@click.argument("records", type=_FILE, nargs=-1, required=True)
def apply_outputs(records: tuple[Path, ...]) -> None:
    """The job summary and the outputs `changed_models` (JSON list) and `changed` from apply
    records (`apply --format json` files). Never fails: unreadable files are reported."""
    from reconciler.ci import outputs
    from reconciler.ci.github import add_summary, set_outputs

    found, problems = outputs.read_all(list(records))
    for problem in problems:
        click.echo(f"note: {problem}")
    changed = outputs.changed_models(found)
    add_summary(outputs.summary(found, problems))
    set_outputs({"changed_models": json.dumps(changed), "changed": str(bool(changed)).lower()})
    click.echo(f"changed models: {', '.join(changed) or 'none'}")


@ci.command(name="revert-pr")
@click.argument("reports", type=_FILE, nargs=-1, required=True)
@_REPO
@click.option("--commit", required=True, help="The commit that was applied.")
@click.option("--since", help="The branch head before the push (revert all it brought).")
@click.option("--base", required=True, help="The default branch (never pushed to).")
@_RUN_URL
def revert_pr(
    reports: tuple[Path, ...],
    repo: str,
    commit: str,
    since: str | None,
    base: str,
    run_url: str | None,
) -> None:
    """Open a pull request reverting the applied commits when a verify report (REPORTS, from
    `verify --format json`) names an endpoint that does not serve its pin."""
    from reconciler.ci import revert

    try:
        outcome = revert.revert(list(reports), repo, commit, since, base, run_url, Path.cwd())
    except RuntimeError as error:
        raise Reported(str(error)) from None
    click.echo(outcome)


@ci.command(name="action")
@click.option(
    "--command", "command", required=True, type=click.Choice(sorted(COMMANDS)), help="The command."
)
@click.option("--environments", default="", help="Space or newline separated; empty: all.")
@click.option("--args", "extra", default="", help="Extra arguments, split as a shell would.")
@click.option("--out-dir", type=_FILE, required=True, help="Where the command's files go.")
@click.option(
    "--fail-on-error/--no-fail-on-error",
    default=True,
    help="Exit with the command's code when it fails (changes pending are not a failure).",
)
@_RECONCILER
def action(
    command: str,
    environments: str,
    extra: str,
    out_dir: Path,
    fail_on_error: bool,
    reconciler_command: str | None,
) -> None:
    """The composite action's step: run one command, write its outputs (exit-code,
    changes-pending, changed-models, plan-file, report-file, errors-file)."""
    from reconciler.ci import action as action_module

    try:
        result = action_module.run(
            command,
            environments,
            extra,
            out_dir,
            click.echo,
            _stderr,
            _reconciler(reconciler_command),
        )
    except ValueError as error:  # shlex: an unclosed quote in --args
        raise click.BadParameter(str(error), param_hint="--args") from None
    for name, value in result.outputs.items():
        click.echo(f"{name}: {value}")
    if result.failed and fail_on_error:
        raise Reported(None, result.exit_code)


def _flushed_echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def _stderr(line: str) -> None:
    click.echo(line, err=True)
