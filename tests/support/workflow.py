"""Run GitHub workflow jobs here, as the runner would, since GitHub is not reachable from the
test machines: each `run:` step in bash -eo pipefail with the job's and the step's env, per-step
$GITHUB_OUTPUT files, $GITHUB_ENV, $GITHUB_PATH and $GITHUB_STEP_SUMMARY; composite actions
(`uses:` of a local folder, or of an action reference the test maps to a folder: the action at
this repository's root standing in for its release) with their inputs, defaults and outputs;
`workflow_call` inputs; `if:` conditions; job outputs.

Expressions are evaluated for the contexts these workflows use (inputs, steps, needs, secrets,
github, runner, env) and the operators `== != && || !` with `always() success() failure()`.
Steps of other actions (checkout, setup-python, cache, artifacts) are skipped and recorded: the
test has the checkout, this Python, and hands files over itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
LOCAL_ACTION = "./.github/actions/reconciler"


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure, skipped
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobResult:
    ok: bool
    outputs: dict[str, str]
    steps: list[StepResult]

    @property
    def log(self) -> str:
        return "\n".join(f"{s.stdout}{s.stderr}" for s in self.steps)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)


_TOKEN = re.compile(r"\s*('(?:[^']|'')*'|==|!=|&&|\|\||!|\(|\)|[A-Za-z_][\w.\-]*(?:\(\))?|\d+)")


class Runner:
    """One repository checkout (`root`) and the runner's files beside it."""

    def __init__(
        self,
        root: Path,
        env: dict[str, str],
        extra_path: Path | None = None,
        *,
        workflows: Path | None = None,
        actions: dict[str, Path] | None = None,
        secrets: dict[str, str] | None = None,
        github: dict[str, Any] | None = None,
        temp: Path | None = None,
    ) -> None:
        self.root = root
        self.workflows = workflows or REPO / ".github" / "workflows"
        self.actions = {"mlflow-reconciler/mlflow-reconciler": REPO, **(actions or {})}
        self.secrets = secrets or {}
        self.github: dict[str, Any] = {
            "repository": "org/pins", "server_url": "https://github.example", "run_id": "1",
            "token": "not-a-token", "actor": "someone", "sha": "", "event": {},
            **(github or {}),
        }  # fmt: skip
        self.temp = temp or root.parent / "runner_temp"
        self.temp.mkdir(parents=True, exist_ok=True)
        self.summary = root.parent / "github_summary"
        self.summary.touch()
        self.path = [str(Path(sys.executable).parent)]
        if extra_path is not None:
            self.path.insert(0, str(extra_path))
        self.env = {
            **os.environ,
            **env,
            "GITHUB_ACTIONS": "true",
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_REPOSITORY": str(self.github["repository"]),
            "GITHUB_RUN_ID": str(self.github["run_id"]),
            "GITHUB_SHA": str(self.github["sha"]),
            "RUNNER_TEMP": str(self.temp),
        }
        self._counter = 0

    # -- workflows and jobs --

    def workflow(self, name: str) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load((self.workflows / name).read_text())
        return document

    def job(
        self,
        workflow: str,
        job: str,
        inputs: dict[str, str] | None = None,
        needs: dict[str, dict[str, Any]] | None = None,
    ) -> JobResult:
        """Run one job: `inputs` as a `workflow_call` or `workflow_dispatch` gives them (with
        the declared defaults), `needs` as {job: {"result": ..., "outputs": {...}}}."""
        document = self.workflow(workflow)
        triggers = document.get(True, document.get("on")) or {}  # type: ignore[call-overload]
        declared = (triggers.get("workflow_call") or {}).get("inputs") or {}
        given = {k: str(v.get("default", "")) for k, v in declared.items()}
        given.update(inputs or {})
        spec = document["jobs"][job]
        context = {"inputs": given, "needs": needs or {}, "steps": {}, "job_status": "success"}
        condition = spec.get("if")
        if condition is not None and not self._truthy(str(condition), context):
            return JobResult(True, {}, [StepResult(job, "skipped")])
        env = {**{k: self._expand(str(v), context) for k, v in document.get("env", {}).items()}}
        env.update({k: self._expand(str(v), context) for k, v in spec.get("env", {}).items()})
        results = self._steps(spec["steps"], context, env, self.root)
        outputs = {k: self._expand(str(v), context) for k, v in spec.get("outputs", {}).items()}
        return JobResult(context["job_status"] == "success", outputs, results)

    def step(self, workflow: str, job: str, name: str, **env: str) -> StepResult:
        """One `run:` step of a job alone (by `id` or `name`), with `env` as the values its
        `env:` expressions would give."""
        for candidate in self.workflow(workflow)["jobs"][job]["steps"]:
            if name in (candidate.get("id"), candidate.get("name")):
                return self._run(name, str(candidate["run"]), env, self.root)
        raise KeyError(f"{workflow}: job {job} has no step {name!r}")

    def action_step(self, folder: Path, name: str, **env: str) -> StepResult:
        """One `run:` step of the composite action in `folder`, alone."""
        action = yaml.safe_load((folder / "action.yml").read_text())
        for candidate in action["runs"]["steps"]:
            if name in (candidate.get("id"), candidate.get("name")):
                return self._run(name, str(candidate["run"]), env, self.root)
        raise KeyError(f"{folder}/action.yml has no step {name!r}")

    def action(self, folder: Path, inputs: dict[str, str]) -> JobResult:
        """A composite action alone, as a step that uses it."""
        context: dict[str, Any] = {"inputs": {}, "steps": {}, "job_status": "success"}
        result = self._composite(folder, inputs, context, {}, "action")
        return JobResult(result.outcome == "success", result.outputs, [result])

    # -- steps --

    def _steps(
        self, steps: list[dict[str, Any]], context: dict[str, Any], env: dict[str, str], cwd: Path
    ) -> list[StepResult]:
        results = []
        for index, step in enumerate(steps):
            name = str(step.get("name") or step.get("id") or step.get("uses") or f"step {index}")
            condition = str(step.get("if", "success()"))
            if not self._truthy(condition, context):
                results.append(StepResult(name, "skipped"))
                continue
            step_env = {
                **env,
                **{k: self._expand(str(v), context) for k, v in step.get("env", {}).items()},
            }
            if "run" in step:
                where = cwd / self._expand(str(step.get("working-directory", ".")), context)
                result = self._run(name, str(step["run"]), step_env, where)
            else:
                result = self._uses(name, str(step["uses"]), step, context, step_env)
            results.append(result)
            if "id" in step:
                context["steps"][step["id"]] = {
                    "outputs": result.outputs,
                    "outcome": result.outcome,
                }
            if result.outcome == "failure" and not step.get("continue-on-error"):
                context["job_status"] = "failure"
        return results

    def _run(self, name: str, script: str, env: dict[str, str], cwd: Path) -> StepResult:
        self._counter += 1
        files = {key: self.temp.parent / f"{key.lower()}_{self._counter}" for key in
                 ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")}  # fmt: skip
        for path in files.values():
            path.write_text("")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env={**self.env, **env, **{k: str(v) for k, v in files.items()},
                 "PATH": os.pathsep.join([*self.path, os.environ["PATH"]])},
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        outputs = _pairs(files["GITHUB_OUTPUT"].read_text())
        self.env.update(_pairs(files["GITHUB_ENV"].read_text()))
        self.path[:0] = reversed(files["GITHUB_PATH"].read_text().split())
        outcome = "success" if done.returncode == 0 else "failure"
        return StepResult(name, outcome, done.stdout, done.stderr, outputs)

    def _uses(
        self, name: str, uses: str, step: dict[str, Any], context: dict[str, Any],
        env: dict[str, str],
    ) -> StepResult:  # fmt: skip
        inputs = {k: self._expand(str(v), context) for k, v in (step.get("with") or {}).items()}
        folder = self._folder(uses)
        if folder is None:
            return StepResult(name, "skipped", stdout=f"(not run here: {uses})")
        return self._composite(folder, inputs, context, env, name)

    def _folder(self, uses: str) -> Path | None:
        if uses.startswith("./"):
            return self.root / uses
        return self.actions.get(uses.split("@", 1)[0])

    def _composite(
        self, folder: Path, given: dict[str, str], outer: dict[str, Any], env: dict[str, str],
        name: str,
    ) -> StepResult:  # fmt: skip
        action = yaml.safe_load((folder / "action.yml").read_text())
        declared = action.get("inputs") or {}
        unknown = set(given) - set(declared)
        assert not unknown, f"{folder}/action.yml has no input {sorted(unknown)}"
        inputs = {k: given.get(k, str(v.get("default", ""))) for k, v in declared.items()}
        context = {**outer, "inputs": inputs, "steps": {}, "job_status": "success",
                   "action_path": str(folder)}  # fmt: skip
        results = self._steps(action["runs"]["steps"], context, env, self.root)
        outputs = {k: self._expand(str(v["value"]), context)
                   for k, v in (action.get("outputs") or {}).items()}  # fmt: skip
        outcome = "success" if context["job_status"] == "success" else "failure"
        stdout = "".join(r.stdout for r in results)
        stderr = "".join(r.stderr for r in results)
        return StepResult(name, outcome, stdout, stderr, outputs)

    # -- expressions --

    def _lookup(self, ref: str, context: dict[str, Any]) -> Any:
        head, _, rest = ref.partition(".")
        roots: dict[str, Any] = {
            "inputs": context.get("inputs", {}),
            "steps": context.get("steps", {}),
            "needs": context.get("needs", {}),
            "secrets": self.secrets,
            "github": {**self.github, "action_path": context.get("action_path", "")},
            "runner": {"temp": str(self.temp), "os": "Linux", "arch": "X64"},
            "env": self.env,
        }
        value: Any = roots[head]
        for part in rest.split(".") if rest else []:
            value = value.get(part, "") if isinstance(value, dict) else ""
        return "" if value is None else value

    def _expand(self, text: str, context: dict[str, Any]) -> str:
        return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", lambda m: str(self._evaluate(m[1], context)), text)

    def _truthy(self, condition: str, context: dict[str, Any]) -> bool:
        text = condition.strip()
        if text.startswith("${{") and text.endswith("}}"):
            text = text[3:-2]
        if not re.search(r"\b(always|failure|cancelled|success)\(\)", text):
            text = f"success() && ({text})"
        return bool(self._evaluate(text, context))

    def _evaluate(self, expression: str, context: dict[str, Any]) -> Any:
        status = context.get("job_status", "success")
        python = []
        position = 0
        while position < len(expression.rstrip()):
            match = _TOKEN.match(expression, position)
            assert match, f"cannot read {expression!r} at {position}"
            token = match[1]
            position = match.end()
            words = {"&&": " and ", "||": " or ", "!": " not ", "==": "==", "!=": "!=",
                     "(": "(", ")": ")", "always()": "True", "cancelled()": "False",
                     "success()": repr(status == "success"), "failure()": repr(status == "failure"),
                     "true": "True", "false": "False"}  # fmt: skip
            if token in words:
                python.append(words[token])
            elif token.startswith("'"):
                python.append(repr(token[1:-1].replace("''", "'")))
            elif token.isdigit():
                python.append(repr(token))  # compared with strings (outputs are strings)
            else:
                python.append(repr(self._lookup(token, context)))
        # Safe: every token was read above; values enter as repr() of strings.
        return eval("".join(python), {"__builtins__": {}})


def _pairs(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def scaffold_action(root: Path) -> None:
    """What `reconciler init` writes as .github/actions/reconciler (pinned to this version, the
    action at this repository's root standing in for that release)."""
    from reconciler.scaffold import files

    target = root / ".github" / "actions" / "reconciler" / "action.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(files.planned(None)[".github/actions/reconciler/action.yml"])


def cached_tool(runner: Runner, bin_dir: Path) -> None:
    """The action's cache, restored: its virtualenv folder already holds this version's
    reconciler (here: `bin_dir`'s environment), so its install step only puts it on PATH."""
    import reconciler

    venv = runner.temp / f"mlflow-reconciler-{reconciler.__version__}"
    if not venv.exists():
        venv.symlink_to(bin_dir.parent)
