"""Tamper rules: a change that makes checks pass by weakening the tests or the commands that run them.

Families (Python, JavaScript/TypeScript, Go, Rust, Java/Kotlin):

* ``test_deleted``: test files deleted or emptied, test functions removed, unless the same assertions
  reappear elsewhere in the change (a move or rename).
* ``test_switched_off``: skip/xfail/disabled/ignore markers on existing tests, focus markers
  (``.only``, ``fdescribe``) that silence every other test. A *new* test added already skipped is
  ``info`` when the reason names a tracked issue, ``medium`` otherwise.
* ``assertion_removed``: a changed test file loses assertions.
* ``test_config_loosened``: runner configuration that deselects tests or lowers coverage thresholds.
* ``test_outcome_rewritten``: hooks and code that rewrite test outcomes or force the exit status.
* ``check_neutralised``: test or check commands whose failure is swallowed (``|| true``, ``set +e``,
  make's ``-``, ``continue-on-error``, surefire's ``testFailureIgnore``).

A plan whose scope names a test file lets the change delete tests or assertions there (the finding
becomes ``medium``); nothing lets a change switch tests off.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from agentflow.rules import Finding, Rule, finding
from agentflow.rules.change import Change, FileDiff, Line

# -- what a file is ----------------------------------------------------------------------------------------

LANGS = {
    ".py": "py",
    ".js": "js",
    ".jsx": "js",
    ".mjs": "js",
    ".cjs": "js",
    ".ts": "js",
    ".tsx": "js",
    ".mts": "js",
    ".cts": "js",
    ".go": "go",
    ".rs": "rs",
    ".java": "java",
    ".kt": "java",
    ".kts": "java",
    ".groovy": "java",
    ".scala": "java",
}
_TEST_DIRS = {"test", "tests", "__tests__", "spec", "specs", "e2e", "testing", "cypress"}
_JS_TEST = re.compile(r"\.(test|spec|e2e|cy)\.[cm]?[jt]sx?$")
_JAVA_TEST = re.compile(r"(Test|Tests|IT|Spec|TestCase)\.(java|kt|groovy|scala)$")

CI_FILE = re.compile(
    r"(^|/)(\.github/workflows/[^/]+\.ya?ml|\.gitlab-ci\.ya?ml|\.gitlab/.*\.ya?ml|azure-pipelines\.ya?ml"
    r"|\.circleci/.*|Jenkinsfile|\.travis\.ya?ml|bitbucket-pipelines\.ya?ml|\.buildkite/.*|action\.ya?ml"
    r"|agentflow\.ya?ml|\.woodpecker.*|\.drone\.ya?ml|appveyor\.ya?ml)$"
)
MAKE_FILE = re.compile(r"(^|/)(GNUmakefile|[Mm]akefile|[^/]+\.mk|[Jj]ustfile|\.justfile)$")
SCRIPT_FILE = re.compile(r"(\.(sh|bash|zsh|ksh|ps1|bat|cmd)$|(^|/)(\.ci|scripts?|bin|\.husky|ci)/[^/.]+$)")
BUILD_FILE = re.compile(
    r"(^|/)(package\.json|pom\.xml|build\.gradle(\.kts)?|settings\.gradle(\.kts)?|gradle\.properties|Cargo\.toml"
    r"|tox\.ini|noxfile\.py|setup\.cfg|pyproject\.toml|pytest\.ini|\.coveragerc|codecov\.ya?ml|\.codecov\.ya?ml"
    r"|(jest|vitest|karma|playwright|cypress|vite)\.config\.[cm]?[jt]s(on)?|\.mocharc\.[a-z]+|karma\.conf\.[jt]s"
    r"|Taskfile\.ya?ml|build\.xml|\.pre-commit-config\.ya?ml|\.nycrc(\.[a-z]+)?|go\.mod|Rakefile)$"
)


def lang(path: str) -> str | None:
    return LANGS.get(PurePosixPath(path).suffix.lower())


def is_test_path(path: str) -> bool:
    """A test file by the conventions of the common frameworks."""
    p = PurePosixPath(path)
    name, language = p.name, lang(path)
    if language is None:
        return False
    if name == "conftest.py":
        return True
    if language == "py" and (name.startswith("test_") or name.endswith("_test.py")):
        return True
    if language == "js" and _JS_TEST.search(name):
        return True
    if language == "go":
        return name.endswith("_test.go")
    if language == "java" and (_JAVA_TEST.search(name) or "src/test/" in path):
        return True
    return any(part in _TEST_DIRS for part in p.parts[:-1])


def is_test_file(file: FileDiff) -> bool:
    if is_test_path(file.path) or (file.old_path and is_test_path(file.old_path)):
        return True
    if lang(file.path) == "rs":  # Rust keeps unit tests next to the code
        return any(_RS_TEST_ATTR.search(line.text) for line in file.lines)
    return False


def is_command_file(path: str) -> bool:
    return bool(CI_FILE.search(path) or MAKE_FILE.search(path) or SCRIPT_FILE.search(path) or BUILD_FILE.search(path))


# -- tests and assertions by language -------------------------------------------------------------------------

_RS_TEST_ATTR = re.compile(r"^\s*#\[\s*(\w+::)*test\b")
_JAVA_TEST_ANN = re.compile(r"^\s*@(Test|ParameterizedTest|RepeatedTest|TestFactory|TestTemplate|Property)\b")
_TEST_DEF = {
    "py": re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(|^\s*class\s+(Test\w*)"),
    "js": re.compile(r"""^\s*(?:it|test|specify|describe|context|suite)(?:\.\w+)*\s*\(\s*(['"`])(.+?)\1"""),
    "go": re.compile(r"^\s*func\s+((?:Test|Benchmark|Fuzz|Example)\w*)\s*\("),
    "rs": re.compile(r"^\s*(?:pub\s+)?(?:async\s+)?fn\s+(\w+)\s*[(<]"),
    "java": re.compile(
        r"^\s*(?:(?:public|protected|private|static|final|suspend|override)\s+)*(?:void|fun|def)\s+(\w+)\s*\("
    ),
}
_ASSERT = {
    "py": re.compile(
        r"^\s*assert\b|\bself\.(assert\w+|fail\w*)\s*\(|\bpytest\.(raises|warns|approx|fail)\b|\.assert_\w+\(|"
        r"\bnp\.testing\.assert|\bassert_\w+\("
    ),
    "js": re.compile(r"\bexpect\s*\(|\bassert(\.\w+)*\s*\(|\.should\b|\bt\.(is|not|deepEqual|true|false|throws)\w*\("),
    "go": re.compile(r"\b[tb]\.(Error|Errorf|Fatal|Fatalf|Fail|FailNow)\s*\(|\b(assert|require)\.\w+\s*\("),
    "rs": re.compile(r"\b(debug_)?assert(_eq|_ne|_matches)?!\s*\(|#\[should_panic"),
    "java": re.compile(
        r"\bassert\w*\s*\(|\bAssert(ions)?\.\w+\(|\bassertThat\s*\(|\bverify\s*\(|\bfail\s*\(|\bassert\s+\S"
    ),
}


def _norm(text: str) -> str:
    return " ".join(text.split())


def _test_name(language: str, text: str) -> str | None:
    match = _TEST_DEF[language].match(text)
    if not match:
        return None
    return next((g for g in match.groups()[::-1] if g and g not in "'\"`"), None)


def _test_names(file: FileDiff, kind: str) -> set[str]:
    """Names of the tests defined on the ``kind`` lines of ``file``."""
    language = lang(file.path)
    if language is None:
        return set()
    names: set[str] = set()
    pending_attr = False  # rust #[test] / java @Test before the fn / method
    for line in file.lines:
        if line.kind != kind:
            continue
        if language in ("rs", "java"):
            if (_RS_TEST_ATTR if language == "rs" else _JAVA_TEST_ANN).match(line.text):
                pending_attr = True
                continue
            if pending_attr and (name := _test_name(language, line.text)):
                names.add(name)
                pending_attr = False
            continue
        if name := _test_name(language, line.text):
            names.add(name)
    return names


def _assertions(file: FileDiff, kind: str) -> list[Line]:
    language = lang(file.path)
    if language is None:
        return []
    pattern = _ASSERT[language]
    return [line for line in file.lines if line.kind == kind and pattern.search(_code(line.text, language))]


def _code(text: str, language: str | None) -> str:
    """The line without a trailing comment (rough: good enough not to count commented-out code)."""
    stripped = text.lstrip()
    if language == "py" and stripped.startswith("#"):
        return ""
    if language in ("js", "go", "rs", "java") and stripped.startswith(("//", "/*", "*")):
        return ""
    return text


def _added_assertions(change: Change) -> Counter[str]:
    return Counter(_norm(line.text) for f in change.files for line in _assertions(f, "+"))


def _all_added_names(change: Change) -> set[str]:
    return {name for f in change.files for name in _test_names(f, "+")}


# -- test_deleted, assertion_removed -----------------------------------------------------------------------------


def _moved(removed: Sequence[Line], added: Counter[str]) -> bool:
    """True when every removed assertion reappears among the change's added ones (a move, a rename)."""
    need = Counter(_norm(line.text) for line in removed)
    return bool(need) and all(added[text] >= count for text, count in need.items())


def check_test_deleted(change: Change) -> list[Finding]:
    found: list[Finding] = []
    added = _added_assertions(change)
    added_names = _all_added_names(change)
    for file in change.files:
        if not is_test_file(file) or file.binary:
            continue
        gone = sorted(_test_names(file, "-") - _test_names(file, "+") - added_names)
        removed = _assertions(file, "-")
        emptied = file.status == "deleted" or (file.removed and not any(x.text.strip() for x in file.added))
        if emptied and file.status != "deleted" and (text := change.new_text(file)) is not None and text.strip():
            emptied = False  # only part of the file was cut; the names and assertions decide
        if not gone and not (emptied and removed):
            continue
        if _moved(removed, added) or (not removed and not gone):
            continue
        if not removed and not emptied and len(_test_names(file, "+")) >= len(gone):
            continue  # renamed in place: the bodies (and their assertions) stay
        what = "deleted" if file.status == "deleted" else ("emptied" if emptied else "changed")
        tests = f" (removed: {', '.join(gone[:8])}{' ...' if len(gone) > 8 else ''})" if gone else ""
        allowed = file.path in change.test_scope
        found.append(
            finding(
                "test_deleted",
                f"test file {file.path} {what}: {len(gone) or 'its'} test(s) and {len(removed)} assertion(s) "
                f"gone without reappearing elsewhere{tests}"
                + (" (the plan's scope names this test path)" if allowed else ""),
                file=file.path,
                severity="medium" if allowed else "high",
                suggestion="keep the tests, or move them with their assertions; a human may override",
            )
        )
    return found


def check_assertion_removed(change: Change) -> list[Finding]:
    found: list[Finding] = []
    added = _added_assertions(change)
    for file in change.files:
        if not is_test_file(file) or file.status == "deleted" or file.binary:
            continue
        removed, kept = _assertions(file, "-"), _assertions(file, "+")
        if len(removed) <= len(kept):
            continue
        same = Counter(_norm(x.text) for x in kept)
        lost = [x for x in removed if not same[_norm(x.text)]]
        if not lost or _moved(lost, added):
            continue
        allowed = file.path in change.test_scope
        first = lost[0]
        found.append(
            finding(
                "assertion_removed",
                f"{file.path} loses {len(removed) - len(kept)} assertion(s) (e.g. old line {first.old}: "
                f"`{_norm(first.text)[:120]}`)" + (" (the plan's scope names this test path)" if allowed else ""),
                file=file.path,
                line=_near_new(file, first),
                severity="medium" if allowed else "high",
                suggestion="keep the assertion or replace it with a stronger one",
            )
        )
    return found


def _near_new(file: FileDiff, line: Line) -> int | None:
    """The new-file line number next to a removed line."""
    index = file.lines.index(line)
    for other in file.lines[index:]:
        if other.new is not None:
            return other.new
    for other in reversed(file.lines[:index]):
        if other.new is not None:
            return other.new
    return None


# -- test_switched_off --------------------------------------------------------------------------------------------

_DECORATOR_SKIP = {
    "py": re.compile(
        r"^\s*@\s*(?:pytest\.)?mark\.(skip|skipif|xfail)\b|^\s*@\s*unittest\.(skip|skipIf|skipUnless|expectedFailure)\b"
        r"|^\s*@\s*(skip|skipIf|skipUnless|expectedFailure)\b"
    ),
    "rs": re.compile(r"^\s*#\[\s*(ignore\b|cfg\s*\(\s*(any\s*\(\s*\)|FALSE|false|not\s*\(\s*test\s*\))\s*\))"),
    "java": re.compile(
        r"^\s*@\s*(Disabled\w*|Ignore|Ignored|EnabledIf\w*|Tag\(\s*\"(skip|disabled)\"\s*\))|^\s*@\s*Test\s*\(.*enabled\s*=\s*false"
    ),
}
_CALL_SKIP = {
    "py": re.compile(
        r"^\s*(?:pytest\.(skip|xfail|importorskip)\s*\(|self\.skipTest\s*\(|raise\s+(?:unittest\.)?SkipTest\b"
        r"|pytestmark\s*=.*mark\.(skip|skipif|xfail)\b)"
    ),
    "go": re.compile(r"^\s*\w+\.(Skip|Skipf|SkipNow)\s*\(|^//\s*(go:build|\+build)\s+ignore\b"),
    "js": re.compile(r"^\s*this\.skip\s*\(|^\s*(ctx|context|t)\.skip\s*\(|^\s*pending\s*\("),
    "java": re.compile(r"^\s*(Assumptions\.)?assume(True|False)\s*\(\s*(false|true)\s*\)|^\s*@DisabledIf"),
}
_JS_SKIP = re.compile(
    r"^\s*(?:(?:it|test|describe|context|suite|specify)(?:\.\w+)*\.(skip|skipIf|runIf|todo)\b|(xit|xdescribe|xtest|xcontext|xspecify)\s*\()"
)
_JS_FOCUS = re.compile(
    r"^\s*(?:(?:it|test|describe|context|suite|specify)(?:\.\w+)*\.only\b|(fit|fdescribe|ftest|fcontext)\s*\()"
)
_JAVA_FOCUS = re.compile(r"^\s*@(Focus|FocusedTest)\b")  # (rare, but exists in some frameworks)
_TRACKED = re.compile(
    r"(#\d+|\b[A-Z][A-Z0-9]{1,9}-\d+\b|/issues/\d+|/pull/\d+|\bissue\s*#?\d+|\bgh-\d+|\bbug\s*#?\d+)", re.IGNORECASE
)


def _forward_def(file: FileDiff, index: int, language: str) -> Line | None:
    """The test definition a decorator at ``index`` applies to (new-file order)."""
    for line in file.lines[index + 1 : index + 12]:
        if line.kind == "-":
            continue
        text = line.text.strip()
        if not text or text.startswith(("@", "#[", "//", "#")):
            continue
        if (
            language == "py"
            and (re.match(r"(async\s+)?def\s|class\s", text))
            or language in ("rs", "java")
            and re.search(r"\b(fn|void|fun|class|def)\s+\w+", text)
        ):
            return line
        if text.endswith(",") or text.endswith("(") or text.startswith((")", "reason", '"', "'")):
            continue  # a decorator spread over lines
        return line
    return None


def _backward_def(file: FileDiff, index: int, language: str) -> Line | None:
    """The function (test) that contains the line at ``index``."""
    pattern = {
        "py": re.compile(r"^\s*(async\s+)?def\s+\w+|^\s*class\s+\w+"),
        "go": re.compile(r"^\s*func\s"),
        "js": re.compile(r"^\s*(it|test|specify|describe)\b|function\s*\(|=>\s*\{"),
        "java": re.compile(r"\b(void|fun)\s+\w+\s*\("),
    }.get(language)
    if pattern is None:
        return None
    for line in reversed(file.lines[:index]):
        if line.kind != "-" and pattern.search(line.text):
            return line
    return None


def _is_new_test(file: FileDiff, defn: Line | None, language: str) -> bool:
    """The definition was added by this change and is not an existing test renamed in place."""
    if file.status == "added":
        return True
    if defn is None or defn.kind != "+":
        return False
    name = _test_name(language, defn.text) if language in _TEST_DEF else None
    if name is None:
        match = re.search(r"(?:def|fn|void|fun|func|class)\s+(\w+)", defn.text)
        name = match.group(1) if match else None
    removed = {x.text for x in file.removed}
    return name is not None and not any(name in text for text in removed) and not _is_switch_of_removed(file, defn)


def _is_switch_of_removed(file: FileDiff, line: Line) -> bool:
    """``it('x')`` replaced by ``it.skip('x')``: the added line is an existing test rewritten."""
    match = re.search(r"""(['"`])(.+?)\1""", line.text)
    if not match:
        return False
    return any(match.group(0) in x.text for x in file.removed)


def _reason_tracked(file: FileDiff, index: int) -> bool:
    window = file.lines[max(0, index - 2) : index + 3]
    return any(_TRACKED.search(line.text) for line in window if line.kind != "-")


def check_test_switched_off(change: Change) -> list[Finding]:
    found: list[Finding] = []
    for file in change.files:
        language = lang(file.path)
        if language is None or file.binary or not (is_test_file(file) or language == "rs"):
            continue
        for index, line in enumerate(file.lines):
            if line.kind != "+":
                continue
            text = line.text
            if language == "js" and _JS_FOCUS.search(text) or language == "java" and _JAVA_FOCUS.search(text):
                found.append(
                    finding(
                        "test_switched_off",
                        f"focus marker in {file.path}: `{_norm(text)[:100]}` runs only this test and silences "
                        "every other one",
                        file=file.path,
                        line=line.new,
                        suggestion="remove the focus marker",
                    )
                )
                continue
            kind = None
            if (pattern := _DECORATOR_SKIP.get(language)) and pattern.search(text):
                kind, defn = "decorator", _forward_def(file, index, language)
            elif (pattern := _CALL_SKIP.get(language)) and pattern.search(text):
                kind = "call"
                defn = None if "pytestmark" in text else _backward_def(file, index, language)
            elif language == "js" and _JS_SKIP.search(text):
                kind, defn = "inline", line
            if kind is None:
                continue
            new = _is_new_test(file, defn, language) if kind != "inline" else _js_new(file, line)
            if new:
                tracked = _reason_tracked(file, index)
                severity = "info" if tracked else "medium"
                message = f"new test in {file.path} added already switched off (`{_norm(text)[:100]}`)" + (
                    "; its reason names a tracked issue" if tracked else "; no tracked issue named in its reason"
                )
            else:
                severity = "high"
                message = f"existing test in {file.path} switched off: `{_norm(text)[:100]}`"
            found.append(
                finding(
                    "test_switched_off",
                    message,
                    file=file.path,
                    line=line.new,
                    severity=severity,
                    suggestion="fix the code or the test instead of skipping it; a skip needs a reason naming "
                    "a tracked issue",
                )
            )
    return found


def _js_new(file: FileDiff, line: Line) -> bool:
    if file.status == "added":
        return True
    return not _is_switch_of_removed(file, line)


# -- test_outcome_rewritten ------------------------------------------------------------------------------------------

_PY_HOOK = re.compile(
    r"^\s*(?:async\s+)?def\s+(pytest_(?:runtest_makereport|collection_modifyitems|sessionfinish|runtest_protocol|"
    r"report_teststatus|runtest_logreport|runtest_call|pyfunc_call|collection_finish|deselected))\s*\("
)
_FORCED = re.compile(  # at the start of a statement: a fixture's string that mentions them is data
    r"^\s*(?:[\w.\[\]'\"]*\.outcome\s*=\s*['\"](passed|skipped)|[\w.]*\bexitstatus\s*=\s*(0|pytest\.ExitCode\.OK|ExitCode\.OK)\b"
    r"|[\w.]*\.force_(result|exception)\s*\(|[\w.]*\blongrepr\s*=\s*None|[\w.]*\bwasxfail\s*=|os\._exit\s*\(\s*0\s*\)"
    r"|sys\.exit\s*\(\s*0\s*\)|os\.Exit\s*\(\s*0\s*\)|process\.exit(Code)?\s*(\(\s*0\s*\)|=\s*0)"
    r"|std::process::exit\s*\(\s*0\s*\)|System\.exit\s*\(\s*0\s*\)|['\"]?testResultsProcessor\b"
    r"|(public\s+|final\s+)*class\s+\w+.*\bimplements\b.*\b(TestExecutionExceptionHandler|InvocationInterceptor)\b"
    r"|[\w.]*\.state\s*=\s*['\"]passed)"
)


def check_test_outcome_rewritten(change: Change) -> list[Finding]:
    found: list[Finding] = []
    for file in change.files:
        language = lang(file.path)
        relevant = is_test_file(file) or file.name == "conftest.py" or BUILD_FILE.search(file.path)
        if file.binary or not (relevant or language == "py"):
            continue
        for line in file.added:
            code = _code(line.text, language)
            hook = _PY_HOOK.match(code) if language == "py" else None
            if hook:
                what = f"defines the pytest hook {hook.group(1)}, which can rewrite test outcomes"
            elif relevant and _FORCED.search(code):
                what = f"forces a test outcome or exit status: `{_norm(code)[:100]}`"
            else:
                continue
            found.append(
                finding(
                    "test_outcome_rewritten",
                    f"{file.path} {what}",
                    file=file.path,
                    line=line.new,
                    suggestion="remove the hook or code; a test outcome must come from the test",
                )
            )
    return found


# -- test_config_loosened --------------------------------------------------------------------------------------------

_DESELECT = re.compile(
    r"(--deselect\b|(^|[\s'\"=\[,])-p\s*['\"]?no:\S+|(^|[\s'\"=\[,])-k\s+\S|--ignore(-glob)?[=\s]|(^|\s)-m\s+['\"]?not\b"
    r"|--passWithNoTests\b|\bpassWithNoTests\s*[:=]\s*true|\btestPathIgnorePatterns\b|\bgo\s+test\b.*\s-(skip|run)\s"
    r"|--exclude-tag|--skip\s|\bexcludedGroups\b|\bexcludeTags\b|<exclude>.*Test.*</exclude>|-Dtest=!)"
)
_THRESHOLD = re.compile(
    r"(cov-fail-under|fail_under|fail-under|minimum_coverage|min_coverage|coverage_threshold|branches|functions|"
    r"lines|statements|<minimum>|minimum|target)['\"]?\s*[:=\s>]\s*['\"]?(\d+(?:\.\d+)?)"
)


def _threshold_values(lines: Iterable[Line]) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in lines:
        for key, value in _THRESHOLD.findall(line.text):
            values.setdefault(key.strip("<>"), float(value))
    return values


def check_test_config_loosened(change: Change) -> list[Finding]:
    found: list[Finding] = []
    for file in change.files:
        if file.binary or not (
            BUILD_FILE.search(file.path)
            or CI_FILE.search(file.path)
            or SCRIPT_FILE.search(file.path)
            or MAKE_FILE.search(file.path)
        ):
            continue
        config = bool(BUILD_FILE.search(file.path))
        for line in file.added:
            if line.text.lstrip().startswith("#"):
                continue
            if _DESELECT.search(line.text) and (config or _TEST_COMMAND.search(line.text)):
                found.append(
                    finding(
                        "test_config_loosened",
                        f"{file.path} deselects or ignores tests: `{_norm(line.text)[:120]}`",
                        file=file.path,
                        line=line.new,
                        suggestion="run every test; fix or delete a test explicitly instead of deselecting it",
                    )
                )
        if not config and not CI_FILE.search(file.path):
            continue
        cov = "cov" in file.path or any(
            re.search(r"cov|coverage|jacoco|fail.under", x.text, re.IGNORECASE) for x in file.lines
        )
        if not cov:
            continue
        before, after = _threshold_values(file.removed), _threshold_values(file.added)
        for key, old in before.items():
            new = after.get(key)
            if new is None or new < old:
                found.append(
                    finding(
                        "test_config_loosened",
                        f"{file.path} lowers the coverage threshold {key} from {old:g} to "
                        + ("nothing" if new is None else f"{new:g}"),
                        file=file.path,
                        line=next((x.new for x in file.added if key in x.text), None),
                        suggestion="keep the threshold; add tests to meet it",
                    )
                )
    return found


# -- check_neutralised ---------------------------------------------------------------------------------------------------

_TEST_COMMAND = re.compile(
    r"\b(pytest|py\.test|tox|nox|unittest|nosetests|coverage\s+run|jest|vitest|mocha|karma|ava|playwright\s+test"
    r"|cypress\s+run|(npm|pnpm|yarn|bun)\s+(run\s+)?(test|check|lint|verify|ci|typecheck)\b|go\s+(test|vet)\b"
    r"|golangci-lint|staticcheck|cargo\s+(test|nextest|clippy|check|fmt)|mvn\w*\b.*\b(test|verify|check|install)\b"
    r"|(\./)?gradlew?\b.*\b(test|check|build)\b|make\s+(test|check|lint|ci|verify)\b|ruff|mypy|pyright|flake8|pylint"
    r"|black\s+--check|eslint|tsc\b|ctest|phpunit|rspec|dotnet\s+test|agentflow\s+(verify|gate)|\.ci/run|run[-_]tests"
    r"|\btest\.sh\b|\bcheck\.sh\b|actionlint|shellcheck|bandit|semgrep)"
)
_SWALLOW = re.compile(
    r"(\|\|\s*(true|:|/bin/true|exit\s+0|echo\b|printf\b)|;\s*(exit\s+0|true|:)\s*(['\"]|$)|--exit-zero\b"
    r"|\bcontinue-on-error\s*:\s*true|\ballow_failure\s*:\s*true|\bignore_outcome\s*=\s*true|\bignore_errors\s*=\s*true"
    r"|testFailureIgnore\s*>?\s*true|maven\.test\.failure\.ignore\s*=\s*true|\bignoreFailures\s*=\s*true"
    r"|-DskipTests\b|maven\.test\.skip\s*=\s*true|<skipTests>\s*true|<skip>\s*true\s*</skip>|\s-x\s+(test|check)\b"
    r"|--no-fail-fast\s*\|\|)"
)
_ALWAYS_TEST = re.compile(
    r"testFailureIgnore|maven\.test\.failure\.ignore|ignoreFailures|-DskipTests|maven\.test\.skip|<skipTests>"
    r"|ignore_outcome|\s-x\s+(test|check)\b"
)
_INSTALL = re.compile(
    r"\b((npm|pnpm|yarn|bun)\s+(install|add|ci\b)|pip3?\s+install|uv\s+(pip|sync|add)|apt(-get)?\s+install|brew\s+install"
    r"|go\s+install|cargo\s+install|gem\s+install|curl|wget)\b"
)
_SET_E_OFF = re.compile(r"^\s*set\s+(\+e|\+o\s+errexit)\b")
_MAKE_IGNORE = re.compile(r"^\t\s*[-@+]*-[@+]*\s*\S")


def _step_text(file: FileDiff, line: Line, text: str | None) -> str:
    """The YAML step (or job) a CI line belongs to: the lines around it at or below its indentation."""
    lines = text.splitlines() if text is not None else [x.text for x in file.lines if x.kind != "-"]
    number = (line.new or 1) - 1 if text is not None else [x for x in file.lines if x.kind != "-"].index(line)
    if not 0 <= number < len(lines):
        return line.text
    indent = len(lines[number]) - len(lines[number].lstrip())
    start = number
    while start > 0:
        prev = lines[start - 1]
        stripped = prev.lstrip()
        if stripped and len(prev) - len(stripped) < indent:
            start -= 1 if stripped.startswith("- ") else 0
            break
        start -= 1
    end = number + 1
    while end < len(lines):
        nxt = lines[end]
        stripped = nxt.lstrip()
        if stripped and len(nxt) - len(stripped) < indent:
            break
        end += 1
    return "\n".join(lines[start:end])


def check_check_neutralised(change: Change) -> list[Finding]:
    found: list[Finding] = []
    for file in change.files:
        if file.binary or not is_command_file(file.path):
            continue
        text = None
        for line in file.added:
            body = line.text
            if body.lstrip().startswith("#") and not MAKE_FILE.search(file.path):
                continue
            why = None
            if _SWALLOW.search(body):
                before = re.split(r"\|\||;", body, maxsplit=1)[0]
                if _ALWAYS_TEST.search(body) or (_TEST_COMMAND.search(before) and not _INSTALL.search(before)):
                    why = "swallows the failure of a test or check command"
                elif re.search(r"continue-on-error|allow_failure", body):
                    text = text if text is not None else change.new_text(file)
                    step = _step_text(file, line, text)
                    if _TEST_COMMAND.search(step):
                        why = "lets a failing test or check step pass (continue-on-error)"
            elif MAKE_FILE.search(file.path) and _MAKE_IGNORE.match(body) and _TEST_COMMAND.search(body):
                why = "ignores the exit status of a test or check recipe (make's `-` prefix)"
            elif _SET_E_OFF.match(body):
                text = text if text is not None else change.new_text(file)
                rest = (text or "").splitlines()[(line.new or 1) :] if text else [x.text for x in file.lines]
                captured = any(re.search(r"\$\?|PIPESTATUS|\$\{\?\}", x) for x in rest)
                if not captured and any(_TEST_COMMAND.search(x) for x in rest):  # `$?` read: the status is used
                    why = "turns off exit-on-error before test or check commands (`set +e`)"
            if why:
                found.append(
                    finding(
                        "check_neutralised",
                        f"{file.path} {why}: `{_norm(body)[:120]}`",
                        file=file.path,
                        line=line.new,
                        suggestion="let the command fail; fix what fails instead",
                    )
                )
    return found


RULES = [
    Rule(
        "test_deleted",
        "test files deleted or emptied, tests removed without reappearing elsewhere",
        "high",
        check_test_deleted,
    ),
    Rule(
        "test_switched_off",
        "skip/xfail/disabled/ignore markers on existing tests; focus markers",
        "high",
        check_test_switched_off,
    ),
    Rule("assertion_removed", "a changed test file loses assertions", "high", check_assertion_removed),
    Rule(
        "test_config_loosened",
        "runner config that deselects tests or lowers coverage thresholds",
        "high",
        check_test_config_loosened,
    ),
    Rule(
        "test_outcome_rewritten",
        "hooks and code that rewrite test outcomes or force the exit status",
        "high",
        check_test_outcome_rewritten,
    ),
    Rule("check_neutralised", "test/check commands whose failure is swallowed", "high", check_check_neutralised),
]
