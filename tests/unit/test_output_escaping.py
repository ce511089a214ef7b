"""Names and values from the registry and the pins cannot forge output (issue 15 §7): MLflow
accepts model names with newlines, backticks, `|`, `<`, `>`, ANSI escapes and bidi overrides, and
one such name once put a fake "in sync" heading and a `<details>` block into the plan comment.

Through the CLI on the fake registry, every format of plan, status, apply, history, import and
verify, and the error lines: text keeps each entry on one line with such characters shown
escaped; markdown, rendered as GitHub renders it, has exactly the headings, `<details>` blocks
and table cells we wrote; JSON carries the exact values."""

from __future__ import annotations

import json
from collections.abc import Collection

import pytest

from reconciler.errors import RegistryError
from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ActualState
from reconciler.render import escape
from tests.conftest import Repo, RunCli, make_runner
from tests.support.markdown import render

pytestmark = pytest.mark.filterwarnings("error")

# Names MLflow 3.17.2 accepts (measured on a real server; it refuses only `/` and `:`), each
# with how text shows it.
REGISTRY_NAMES = {
    "evil\n### Registry plan — in sync\n\nno changes, approve": (
        "evil\\n### Registry plan — in sync\\n\\nno changes, approve"
    ),
    "x\n<details><summary>hidden": "x\\n<details><summary>hidden",
    "tick`s``x": "tick`s``x",
    "a|b": "a|b",
    "cr\rname": "cr\\rname",
    "red\x1b[31mname": "red\\x1b[31mname",
    "rtl\u202eeman": "rtl\\u202eeman",
}
# Names a pin can hold (printable, no backslash: MLflow's search filter must name them) that
# markdown would read as markup.
PIN_NAMES = ["tick`s``x", "a|b|c", "<details>open", "&lt;b&gt; #x *y* _z_ $m$ ~s~"]
NOTE = "fine\n### Registry plan: in sync\n<details><summary>approve</summary>\n| x | y |\n`c` *b* \x1b[31m\u202e"
NOTE_SHOWN = (
    "fine\\n### Registry plan: in sync\\n<details><summary>approve</summary>\\n| x | y |\\n"
    "`c` *b* \\x1b[31m\\u202e"
)


def printable(output: str) -> bool:
    """Nothing in `output` but printable characters and our own line breaks."""
    return all(c.isprintable() or c == "\n" for c in output)


def pin(repo: Repo, env: str, model: str, version: int, note: str | None = None) -> None:
    lines = [f"model: {json.dumps(model)}", f"version: {version}"]
    if note is not None:
        lines.append(f"note: {json.dumps(note)}")
    repo.write(f"environments/{env}/{model}.yaml", "\n".join(lines) + "\n")


@pytest.fixture
def unmanaged(repo: Repo, fake: FakeRegistry) -> FakeRegistry:
    """churn pinned and in sync; every hostile name holds Production without a pin."""
    fake.create_version("churn", stage=PRODUCTION)
    for name in REGISTRY_NAMES:
        fake.create_version(name, stage=PRODUCTION)
    pin(repo, "production", "churn", 1)
    return fake


@pytest.fixture
def pinned(repo: Repo, fake: FakeRegistry) -> FakeRegistry:
    """Each markup-like name pinned to v2 (v1 serves), with a hostile note."""
    for name in PIN_NAMES:
        fake.create_version(name, stage=PRODUCTION)
        fake.create_version(name)
        pin(repo, "production", name, 2, note=NOTE)
    return fake


def test_plan_markdown_with_hostile_unmanaged_names(run: RunCli, unmanaged: FakeRegistry) -> None:
    result = run("plan", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("#")] == [
        "### Registry plan: in sync"
    ]
    shown = render(result.stdout)
    assert shown.headings == [("h3", "Registry plan: in sync")]
    assert shown.tags.get("details") == 1  # ours, around the unmanaged table
    assert shown.tags.get("summary") == 1
    main, unmanaged_table = shown.tables
    assert set(main) == {5}
    assert unmanaged_table == [3] * (1 + len(REGISTRY_NAMES))
    assert set(REGISTRY_NAMES.values()) <= set(shown.codes)
    assert printable(result.stdout)


def test_plan_text_and_json_with_hostile_unmanaged_names(
    run: RunCli, unmanaged: FakeRegistry
) -> None:
    result = run("plan")
    assert result.exit_code == 0, result.stderr
    assert printable(result.stdout)
    listed = [line for line in result.stdout.splitlines() if line.startswith("  ? ")]
    assert sorted(listed) == sorted(
        f"  ? production: {shown} Production v1" for shown in REGISTRY_NAMES.values()
    )
    document = json.loads(run("plan", "--format", "json").stdout)
    assert sorted(u["model"] for u in document["unmanaged"]) == sorted(REGISTRY_NAMES)


def test_plan_markdown_with_markup_in_pinned_names_and_notes(
    run: RunCli, pinned: FakeRegistry
) -> None:
    result = run("plan", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    headings = [line for line in result.stdout.splitlines() if line.startswith("#")]
    assert len(headings) == 1 + len(PIN_NAMES)  # the title and one review per change
    shown = render(result.stdout)
    assert [tag for tag, _ in shown.headings] == ["h3"] + ["h4"] * len(PIN_NAMES)
    assert shown.headings[0] == ("h3", "Registry plan: changes pending")
    for (_, heading), name in zip(shown.headings[1:], sorted(PIN_NAMES), strict=True):
        assert heading == f"production: {name} v1 → v2"
    assert "details" not in shown.tags
    assert shown.tables[0] == [5] * (1 + len(PIN_NAMES))
    assert set(PIN_NAMES) <= set(shown.codes)
    # The note reads as written, escaped once, in every row.
    assert shown.text.count(NOTE_SHOWN) == len(PIN_NAMES)
    assert printable(result.stdout)


def test_plan_text_and_json_with_markup_in_pinned_names_and_notes(
    run: RunCli, pinned: FakeRegistry
) -> None:
    result = run("plan")
    assert result.exit_code == 0, result.stderr
    assert printable(result.stdout)
    lines = result.stdout.splitlines()
    assert lines.count(f"      note: {NOTE_SHOWN}") == len(PIN_NAMES)
    assert len(lines) == 1 + 2 * len(PIN_NAMES) + 2  # heading, entry + note each, summary
    document = json.loads(run("plan", "--format", "json").stdout)
    assert sorted(p["model"] for p in document["pins"]) == sorted(PIN_NAMES)
    assert {p["note"] for p in document["pins"]} == {NOTE}


def test_status_every_format(run: RunCli, pinned: FakeRegistry, unmanaged: FakeRegistry) -> None:
    text = run("status")
    assert text.exit_code == 0, text.stderr
    assert printable(text.stdout)
    assert len(text.stdout.splitlines()) == 1 + len(PIN_NAMES) + 1  # header, rows (churn too)
    markdown = run("status", "--format", "markdown")
    assert not [line for line in markdown.stdout.splitlines() if line.startswith("#")]
    shown = render(markdown.stdout)
    assert not [tag for tag in shown.tags if tag in ("h1", "h2", "h3", "h4", "details")]
    assert shown.tables == [[6] * (1 + len(PIN_NAMES) + 1)]
    assert set(PIN_NAMES) <= set(shown.codes)
    rows = json.loads(run("status", "--format", "json").stdout)
    assert sorted(r["model"] for r in rows) == sorted([*PIN_NAMES, "churn"])


def test_status_markdown_escapes_a_forged_applied_commit(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """The state tag is registry data anyone with write access can set."""
    fake.create_version("churn", stage=PRODUCTION)
    pin(repo, "production", "churn", 1)
    forged = {"environments": {"production": {"commit": "|<details>\n# x\x1b[0m"}}}
    fake.set_model_tag("churn", "reconciler.state", json.dumps(forged))
    shown = render(run("status", "--format", "markdown").stdout)
    assert "details" not in shown.tags
    assert shown.headings == []
    assert shown.tables == [[6, 6]]
    # Not a commit id: the tag is unreadable (records/state_shape.py), and says so.
    assert "unreadable state tag" in shown.text
    assert printable(run("status").stdout)


def test_apply_text_and_json(run: RunCli, pinned: FakeRegistry) -> None:
    result = run("apply")
    assert result.exit_code == 0, result.stderr
    assert printable(result.stdout)
    lines = result.stdout.splitlines()
    assert len(lines) == len(PIN_NAMES) + 1
    for name in PIN_NAMES:
        assert f"✓ production: {name} v2 → Production, archives v1" in lines
    for name in PIN_NAMES:
        pinned.force_stage(name, "2", "None")
        pinned.force_stage(name, "1", PRODUCTION)
    records = json.loads(run("apply", "--format", "json").stdout)
    assert sorted(r["model_name"] for r in records) == sorted(PIN_NAMES)


class _Refusing(FakeRegistry):
    """A registry whose transitions fail with a message quoting a hostile name, as a server's
    error text may."""

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        raise RegistryError(f"refused for model {model!r} beside\nx\x1b[2J\n### in sync")


class _Unreadable(FakeRegistry):
    def read(self, models: Collection[str]) -> ActualState:
        raise RegistryError("cannot read\nevil\n::error::forged\x1b[31m")


def test_failed_step_and_error_lines_stay_one_line(repo: Repo) -> None:
    registry = _Refusing()
    registry.create_version("a|b|c", stage=PRODUCTION)
    registry.create_version("a|b|c")
    pin(repo, "production", "a|b|c", 2)
    result = make_runner(repo.root, registry)("apply")
    assert result.exit_code == 1
    assert printable(result.stdout)
    assert printable(result.stderr)
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert failed == [
        "✗ production: a|b|c v2 → Production, archives v1: FAILED: refused for model 'a|b|c' "
        "beside\\nx\\x1b[2J\\n### in sync"
    ]
    broken = make_runner(repo.root, _Unreadable())
    plan = broken("plan")
    assert plan.exit_code == 1
    assert plan.stderr == "error: cannot read\\nevil\\n::error::forged\\x1b[31m\n"
    document = json.loads(broken("plan", "--format", "json").stdout)
    assert document["error"]["message"] == "cannot read\nevil\n::error::forged\x1b[31m"


def test_history_text_and_json(repo: Repo, fake: FakeRegistry) -> None:
    name = "tick`s``x"
    fake.create_version(name, stage=PRODUCTION)
    pin(repo, "production", name, 1)
    repo.commit("\x1b[31mpromote\u202e it")
    run = make_runner(repo.root, fake)
    result = run("history", name)
    assert result.exit_code == 0, result.stderr
    assert printable(result.stdout)
    (line,) = [line for line in result.stdout.splitlines() if "production:" in line]
    assert line.endswith("Test Author: \\x1b[31mpromote\\u202e it")
    document = json.loads(run("history", name, "--format", "json").stdout)
    assert document["model"] == name
    assert document["changes"][0]["summary"] == "\x1b[31mpromote\u202e it"


def test_import_text_and_json(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    for name in REGISTRY_NAMES:
        fake.create_version(name, stage=PRODUCTION)
    result = run("import")
    assert result.exit_code == 0, result.stderr
    assert printable(result.stdout)
    entries = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(entries) == len(REGISTRY_NAMES)  # one line per model, written or refused
    for name, shown in REGISTRY_NAMES.items():
        assert sum(f"environments/production/{shown}.yaml" in line for line in entries) == 1, name
    for file in (repo.root / "environments" / "production").iterdir():
        file.unlink()
    document = json.loads(run("import", "--format", "json").stdout)
    assert sorted(p["model"] for p in document["pins"]) == sorted(REGISTRY_NAMES)


def test_verify_lines(repo: Repo, run: RunCli) -> None:
    from tests.unit.test_verify import Serving, settings

    serving = Serving()
    try:
        settings(repo, "production", f"{serving.base}/health")
        pin(repo, "production", "a|b|c", 3)
        serving.serve("/health", "9\n### in sync\x1b[0m")
        result = run("verify", "--timeout", "0")
    finally:
        serving.close()
    assert result.exit_code == 1
    assert printable(result.stdout)
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("FAIL  a|b|c in production: pinned v3, ")


def test_github_annotations(repo: Repo, run: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workflow commands percent-encode `%`, CR and LF, and `:` and `,` in properties; the
    message is one line as the error line is."""
    repo.write("environments/production/50%,a:b\nc.yaml", "model: other\nversion: 0\n")
    result = run("validate", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) >= 2
    assert all(line.startswith("::error file=") for line in lines)
    assert all("file=environments/production/50%25%2Ca%3Ab%0Ac.yaml," in line for line in lines)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    on_stderr = run("validate")
    assert [line for line in on_stderr.stderr.splitlines() if line.startswith("::")] == lines
    assert printable(on_stderr.stderr)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("plain", "`plain`", id="plain"),
        pytest.param("a`b", "``a`b``", id="one-backtick"),
        pytest.param("`x``", "``` `x`` ```", id="edges"),
        pytest.param(" x", "`  x `", id="leading-space"),
        pytest.param("a\nb", "`a\\nb`", id="newline"),
    ],
)
def test_code_spans_cannot_be_closed(value: str, shown: str) -> None:
    assert escape.md_code(value) == shown
    rendered = render(f"| h |\n|---|\n| {escape.md_cell(escape.md_code(value))} |")
    assert rendered.codes == [escape.text(value)]


def test_markdown_prose_renders_as_written() -> None:
    value = "a_b _c_ *d* [e](f) <g> &amp; \\h `i` |j| ~k~ #l $m$ ![n]"
    assert render(escape.md_text(value)).text.strip() == value
    assert "latency_ms" in escape.md_text("latency_ms")  # intraword: no emphasis, no escape
    cell = render(f"| h |\n|---|\n| {escape.md_cell(escape.md_text(value))} |")
    assert cell.tables == [[1, 1]]
    assert cell.text.split() == ["h", *value.split()]


def test_text_is_one_line_and_idempotent() -> None:
    value = "a\nb\rc\td\x1b[0me\u202ef\u2028g\x00"
    shown = escape.text(value)
    assert shown == "a\\nb\\rc\\td\\x1b[0me\\u202ef\\u2028g\\x00"
    assert escape.text(shown) == shown
    assert escape.text("modèle-模型 ok") == "modèle-模型 ok"


def test_unlock_and_lease_lines_show_a_forged_holder_escaped(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """A lease lives in a registry tag anyone with write access can set."""
    from tests.unit.test_apply_safety import hold_lease

    holder = "job\n::error::forged\x1b[2J"
    fake.create_version("a|b|c", stage=PRODUCTION)
    fake.create_version("a|b|c")
    hold_lease(fake, holder, 100, model="a|b|c")
    pin(repo, "production", "a|b|c", 2)
    refused = run("apply", "--lease-wait", "0")
    assert refused.exit_code != 0
    assert printable(refused.stderr)
    assert "job\\n::error::forged\\x1b[2J" in refused.stderr
    assert not [line for line in refused.stderr.splitlines() if line.startswith("::")]
    hold_lease(fake, holder, -1, model="a|b|c")
    result = run("unlock")
    assert result.exit_code == 0, result.stderr
    assert printable(result.stdout)
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("a|b|c: lease removed (expired): job\\n::error::forged\\x1b[2J")
