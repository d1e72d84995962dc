"""Plan files: Markdown with YAML front matter (DESIGN.md, "Plan file").

A plan is what a builder implements and a verifier judges against, so a typo must never pass
silently: unknown front-matter keys, malformed YAML, missing ids and duplicate ids are errors
(``PlanError``, exit 2) naming the file, the line or key, and the fix.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentflow import yamlsrc
from agentflow.config import CheckSpec, validate_checks
from agentflow.errors import PlanError
from agentflow.files import read_text_file
from agentflow.markdown import find_section, list_items, slugify
from agentflow.planfiles import (  # light: status and hooks use them
    PLANS_DIR,
    display_path,
    find_plans,
    lexical_display,
    linked_part,
)

FRONT_MATTER_KEYS = ("id", "title", "status", "patterns", "scope", "checks", "max_cycles", "estimate")
CRITERIA_HEADINGS = {"acceptance criteria", "acceptance criterion"}
REQUIREMENTS_HEADINGS = {"requirements", "requirement"}
CONTEXT_HEADINGS = {"context", "background"}
HOURS_PER_UNIT = {"h": 1.0, "d": 8.0, "w": 40.0}
SLUG_LENGTH = 50  # file names and branch names (agentflow/<id>-<slug>) stay readable
_DANGLING = frozenset({"a", "an", "and", "as", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"})

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ESTIMATE_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([hdw])", re.IGNORECASE)
_CRITERION_ID = re.compile(r"^(?:\*\*|__)?(AC[- ]?\d+)(?:\*\*|__)?\s*[:.)\-]\s*(?:\*\*|__)?\s*(.*)$", re.IGNORECASE)


class Criterion(BaseModel):
    id: str
    text: str
    line: int = 0


class Plan(BaseModel):
    """A parsed, validated plan file."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    status: Literal["draft", "ready"] = "ready"
    patterns: list[str] = []
    scope: list[str] = []
    checks: list[str | CheckSpec] = []
    max_cycles: int | None = None
    estimate_hours: float | None = None
    body: str = ""
    context: str = ""
    requirements: list[str] = []
    criteria: list[Criterion] = []
    path: Path

    @property
    def slug(self) -> str:
        """The file name's slug (``348-capsule-isolation.md`` -> ``capsule-isolation``), else the title's.

        Plan files are written as ``<id>-<title_slug(title)>.md``, so both ways give the same slug."""
        stem = self.path.stem
        prefix = f"{self.id}-"
        if stem.startswith(prefix) and len(stem) > len(prefix):
            return slugify(stem[len(prefix) :], SLUG_LENGTH) or title_slug(self.title)
        return title_slug(self.title)

    @property
    def text(self) -> str:
        """The whole plan as the models see it: title and body."""
        return f"# {self.id}: {self.title}\n\n{self.body.strip()}\n"


class _FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int | str
    title: str = Field(min_length=1)
    status: Literal["draft", "ready"] = "ready"
    patterns: list[str] = []
    scope: list[str] = []
    checks: list[str | CheckSpec] = []
    max_cycles: int | None = Field(None, ge=1, le=20)
    estimate: str | float | None = None

    _checks = field_validator("checks", mode="before")(validate_checks)


def title_slug(title: str) -> str:
    """The slug of a plan title for file and branch names: at most ``SLUG_LENGTH`` characters, cut
    at a word boundary, without a dangling ``and``/``to``/... left by the cut."""
    full = slugify(title)
    slug = slugify(title, SLUG_LENGTH)
    if slug != full:
        words = slug.split("-")
        while len(words) > 1 and words[-1] in _DANGLING:
            words.pop()
        slug = "-".join(words)
    return slug or "plan"


def parse_estimate(value: str | float | int, where: str | None = None) -> float:
    """``"2d"`` -> 16.0 hours (1d = 8h, 1w = 40h); ``"1w 2d"`` and ``"1.5d"`` work too."""
    if isinstance(value, (bool, int | float)):
        raise PlanError(f"estimate: {value!r} has no unit", where=where, fix=f"write {value}h, {value}d or {value}w")
    text = str(value).strip()
    parts = _ESTIMATE_PART.findall(text)
    if not parts or _ESTIMATE_PART.sub("", text).strip():
        raise PlanError(
            f"estimate: cannot read {text!r}", where=where, fix="use hours, days or weeks, e.g. 6h, 2d, 1w or 1w 2d"
        )
    hours = sum(float(number) * HOURS_PER_UNIT[unit.lower()] for number, unit in parts)
    if hours <= 0:
        raise PlanError(f"estimate: {text!r} is not positive", where=where, fix="estimate more than 0h")
    return hours


def _split_front_matter(text: str, where: str) -> tuple[str, str, int]:
    """Returns (front matter YAML, body, line number where the body starts)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise PlanError(
            "missing front matter",
            where=f"{where}:1",
            fix="start the file with a `---` line, the YAML keys id and title, and a closing `---`",
        )
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            body = "\n".join(lines[index + 1 :])
            return "\n".join(lines[1:index]), body + ("\n" if text.endswith("\n") else ""), index + 2
    raise PlanError("front matter is not closed", where=f"{where}:1", fix="end the front matter with a `---` line")


class PlanProblems(PlanError):
    """Every problem found in one plan file (``errors``), reported one line each."""

    def __init__(self, errors: list[PlanError]):
        self.errors = errors
        super().__init__(errors[0].problem, where=errors[0].where, fix=errors[0].fix)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def _raise_all(problems: list[PlanError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise PlanProblems(problems)


def _where(file: str, source: yamlsrc.YamlSource, *path: str) -> str:
    line = source.line(path, offset=1)  # the front matter starts on the file's second line
    return f"{file}:{line}" if line else file


def _load_yaml(front: str, file: str) -> yamlsrc.YamlSource:
    try:
        source = yamlsrc.load(front)
    except yaml.YAMLError as exc:
        line, problem = yamlsrc.syntax_error(exc, offset=1)  # the front matter starts on the second line
        raise PlanError(
            f"malformed YAML in front matter: {problem}",
            where=f"{file}:{line}" if line else file,
            fix="fix the YAML syntax; quote values that contain `: ` or start with a special character",
        ) from None
    if source.data is None:
        source.data = {}
    if not isinstance(source.data, dict):
        raise PlanError(
            "front matter must be YAML keys and values", where=f"{file}:2", fix="write `id: 1` and `title: ...`"
        )
    return source


def _key_problems(source: yamlsrc.YamlSource, file: str) -> list[PlanError]:
    problems = [
        PlanError(
            f"{path[-1]}: duplicate key (first on line {first + 1})",
            where=f"{file}:{line + 1}",
            fix="keep one of them: YAML would silently use the last",
        )
        for path, line, first in source.duplicates
        if len(path) == 1
    ]
    for key in source.data:
        if str(key) not in FRONT_MATTER_KEYS:
            close = difflib.get_close_matches(str(key), FRONT_MATTER_KEYS, n=1)
            fix = f"did you mean `{close[0]}`?" if close else f"valid keys: {', '.join(FRONT_MATTER_KEYS)}"
            problems.append(PlanError(f"{key}: unknown key", where=_where(file, source, str(key)), fix=fix))
    for key in ("id", "title"):
        if source.data.get(key) in (None, ""):
            problems.append(PlanError(f"{key}: missing", where=file, fix=f"add `{key}: ...` to the front matter"))
    return problems


def _validate(source: yamlsrc.YamlSource, file: str, problems: list[PlanError]) -> _FrontMatter | None:
    data = {key: value for key, value in source.data.items() if str(key) in FRONT_MATTER_KEYS}
    for key in ("patterns", "scope", "checks"):
        if isinstance(data.get(key), str):  # one value written without brackets
            data[key] = [data[key]]
    reported = {problem.problem.split(":")[0] for problem in problems}
    ident = data.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int | str) or not _ID.match(str(ident))):
        problems.append(
            PlanError(
                f"id: {data['id']!r} is not a number or slug",
                where=_where(file, source, "id"),
                fix="use a number like 348 or a slug like auth-refactor",
            )
        )
        reported.add("id")
    try:
        return _FrontMatter.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            path = [str(part) for part in error["loc"]]
            key = path[0] if path else "front matter"
            # one problem per key (per item of a list): a union such as id: int | str fails once per member
            seen = ".".join(path[:2]) if len(path) > 1 and path[1].isdigit() else key
            if key in reported or seen in reported:
                continue  # already said, e.g. "title: missing" or "id: 2.5 is not a number or slug"
            reported.add(seen)
            label = ".".join(path) or key
            problems.append(
                PlanError(
                    f"{label}: {error['msg'].removeprefix('Value error, ')}",
                    where=_where(file, source, *path),
                    fix=_fix_for(key),
                )
            )
        return None


def _fix_for(key: str) -> str:
    fixes = {
        "status": "write `status: draft` or `status: ready`",
        "max_cycles": "a whole number from 1 to 20",
        "patterns": "a list of CLAUDE.md pattern ids, e.g. [capsule-isolation]",
        "scope": 'a list of path globs, e.g. ["src/**"]',
        "checks": 'a list of commands, e.g. ["pytest -q"]',
    }
    return fixes.get(key, "see the plan format in docs/foundation.md")


def _criteria(lines: list[str], first_line: int, file: str, problems: list[PlanError]) -> list[Criterion]:
    section = find_section(lines, CRITERIA_HEADINGS)
    if section is None:
        return []
    _, start, end = section
    criteria: list[Criterion] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(list_items(lines, start, end), start=1):
        line = item.line + first_line - 1
        match = _CRITERION_ID.match(item.text)
        if match:
            ident = "AC" + re.sub(r"\D", "", match.group(1))
            text = match.group(2).strip().strip("*_").strip()
        else:
            ident, text = f"AC{position}", item.text
        if ident in seen:
            problems.append(
                PlanError(
                    f"acceptance criterion {ident} appears twice (also line {seen[ident]})",
                    where=f"{file}:{line}",
                    fix="give every criterion its own id, or drop the ids to number them in order",
                )
            )
            continue
        if not text:
            problems.append(
                PlanError(f"acceptance criterion {ident} is empty", where=f"{file}:{line}", fix="say what must be true")
            )
            continue
        seen[ident] = line
        criteria.append(Criterion(id=ident, text=text, line=line))
    return criteria


def _section_text(lines: list[str], names: set[str]) -> str:
    section = find_section(lines, names)
    if section is None:
        return ""
    _, start, end = section
    return "\n".join(lines[start:end]).strip()


def _section_items(lines: list[str], names: set[str]) -> list[str]:
    section = find_section(lines, names)
    if section is None:
        return []
    _, start, end = section
    return [item.text for item in list_items(lines, start, end)]


def parse_plan(text: str, path: Path) -> Plan:
    """Parse plan text; ``path`` names the file in errors and becomes ``Plan.path``.

    Every problem in the file is reported (``PlanProblems`` when there are several), not only the first.
    """
    file = display_path(path)
    front, body, body_line = _split_front_matter(text, file)
    source = _load_yaml(front, file)
    problems = _key_problems(source, file)
    meta = _validate(source, file, problems)
    estimate = None
    if meta is not None and meta.estimate is not None:
        try:
            estimate = parse_estimate(meta.estimate, where=_where(file, source, "estimate"))
        except PlanError as exc:
            problems.append(exc)
    lines = body.splitlines()
    criteria = _criteria(lines, body_line, file, problems)
    _raise_all(problems)
    assert meta is not None  # no problem reported means the front matter validated
    return Plan(
        id=str(meta.id),
        title=meta.title.strip(),
        status=meta.status,
        patterns=meta.patterns,
        scope=meta.scope,
        checks=meta.checks,
        max_cycles=meta.max_cycles,
        estimate_hours=estimate,
        body=body,
        context=_section_text(lines, CONTEXT_HEADINGS),
        requirements=_section_items(lines, REQUIREMENTS_HEADINGS),
        criteria=criteria,
        path=path,
    )


def load_plan(path: Path, root: Path | None = None) -> Plan:
    """Read and validate one plan file (``PlanError``, exit 2, on any problem). A plan file, or a
    folder on its way below the repository ``root``, that is a symbolic link is one
    (``planfiles.linked_part``): never followed."""
    if (link := linked_part(path, root)) is not None:
        try:
            target = f" (to {os.readlink(link)})"
        except OSError:
            target = ""
        raise PlanError(
            f"is a symbolic link{target}: a plan is read from the file itself, never through a link (a change "
            "could point one at another plan or out of the repository)",
            where=lexical_display(link),
            fix="replace the link with the plan file itself",
        )
    if not path.exists():
        raise PlanError(
            "no such plan file", where=display_path(path), fix="check the path, or list plans with `agentflow status`"
        )
    return parse_plan(read_text_file(path, where=display_path(path), error=PlanError), path)


def plan_warnings(plan: Plan) -> list[str]:
    """Problems that do not make a plan invalid but weaken verification."""
    warnings = []
    if not plan.criteria:
        warnings.append("no acceptance criteria: the verifier can only judge against the patterns")
    return warnings


def check_unique(plans: list[Plan]) -> None:
    """Duplicate ids are an error naming both files."""
    seen: dict[str, Plan] = {}
    for plan in plans:
        if plan.id in seen:
            raise PlanError(
                f"duplicate plan id {plan.id!r} (also in {display_path(seen[plan.id].path)})",
                where=display_path(plan.path),
                fix="give one of them a new id",
            )
        seen[plan.id] = plan


def load_plans(root: Path) -> list[Plan]:
    """Every plan under ``.plans/``, validated and with unique ids."""
    plans = [load_plan(path, root) for path in find_plans(root)]
    check_unique(plans)
    return plans


def unknown_patterns(plan: Plan, known: Collection[str]) -> list[PlanError]:
    """A problem for each pattern the plan names that is not among the ``known`` pattern ids."""
    problems = []
    for name in plan.patterns:
        if slugify(name) not in known:
            close = difflib.get_close_matches(slugify(name), list(known), n=1)
            if close:
                fix = f"did you mean `{close[0]}`?"
            elif not known:
                fix = "the patterns file (CLAUDE.md) has none: write the pattern there, or drop `patterns:`"
            else:
                fix = "list them with `agentflow patterns list`"
            problems.append(PlanError(f"patterns: unknown pattern {name!r}", where=display_path(plan.path), fix=fix))
    return problems


def check_plans(
    paths: list[Path], root: Path, known_patterns: Collection[str] | None = None
) -> tuple[list[Plan], list[PlanError]]:
    """Validate ``paths`` and report every problem, not only the first.

    Returns the valid plans and the errors; a plan whose id is also used by another plan (among
    ``paths`` or anywhere under ``.plans/``) is an error naming both files, not a valid plan, and so
    is one naming a pattern that is not in ``known_patterns`` (when given).
    """
    plans: list[Plan] = []
    errors: list[PlanError] = []
    for path in paths:
        try:
            plans.append(load_plan(path, root))
        except PlanProblems as exc:
            errors.extend(exc.errors)
        except PlanError as exc:
            errors.append(exc)
    checked = {p.path.resolve() for p in plans}
    others: list[Plan] = []
    for path in find_plans(root):
        if path.resolve() not in checked:
            try:
                others.append(load_plan(path, root))
            except PlanError:
                continue  # reported when that file is checked itself
    first: dict[str, Plan] = {}
    duplicates: set[Path] = set()
    for plan in [*others, *plans]:
        if plan.id in first and plan.path.resolve() in checked:
            errors.append(
                PlanError(
                    f"duplicate plan id {plan.id!r} (also in {display_path(first[plan.id].path)})",
                    where=display_path(plan.path),
                    fix="give one of them a new id",
                )
            )
            duplicates.add(plan.path.resolve())
        first.setdefault(plan.id, plan)
    if known_patterns is not None:
        for plan in plans:
            problems = unknown_patterns(plan, known_patterns)
            errors.extend(problems)
            if problems:
                duplicates.add(plan.path.resolve())
    return [p for p in plans if p.path.resolve() not in duplicates], errors


def resolve_plan(root: Path, ref: str, plans: Callable[[], list[Plan]] | None = None) -> Plan:
    """A plan named by path (relative to the cwd or ``root``), id, or file stem. ``plans``: where
    the plans under ``.plans/`` come from (default: read them), so resolving several refs reads them once."""
    for candidate in (Path(ref), root / ref):
        if candidate.is_file() or candidate.is_symlink():
            return load_plan(candidate, root)
    found = plans() if plans is not None else load_plans(root)
    for plan in found:
        if (
            plan.id == ref
            or plan.path.stem == ref
            or (ref.isdigit() and plan.id.isdigit() and int(ref) == int(plan.id))
        ):
            return plan
    known = ", ".join(p.id for p in found) or "none"
    raise PlanError(
        f"no plan {ref!r} (known ids: {known})", fix="name a plan file or id; `agentflow plan new` creates one"
    )


def branch_name(plan: Plan) -> str:
    """The plan's branch: ``agentflow/<id>-<slug>``."""
    return f"agentflow/{plan.id}-{plan.slug}"


def next_id(root: Path) -> int:
    """One more than the largest numeric id under ``.plans/`` (ids read from file names when a plan is broken)."""
    numbers = [0]
    for path in find_plans(root):
        try:
            ident = load_plan(path).id
        except PlanError:
            ident = re.match(r"^(\d*)", path.name).group(1)  # type: ignore[union-attr]
        if ident.isdigit():
            numbers.append(int(ident))
    return max(numbers) + 1


PLAN_TEMPLATE = """\
---
id: {id}
title: {title}
status: draft                # draft | ready
patterns: []                 # CLAUDE.md patterns that apply; empty: agentflow picks relevant ones
scope: []                    # paths the builder may change, e.g. ["src/api/**"]
checks: []                   # commands that must pass, e.g. ["pytest -q"]
# max_cycles: 3              # rework cycles before giving up (default from agentflow.yaml)
# estimate: 1d               # manual estimate (h, d, w) for the speedup metrics
---
## Context

Why this change is needed and what the builder should know first.

## Requirements

1. What MUST be true after the change.

## Acceptance criteria

- AC1: An observable, checkable result (a test, a command's output, a file's content).
"""


def _yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when it reads back unchanged, else a quoted string."""
    try:
        if yaml.safe_load(f"k: {value}") == {"k": value} and "#" not in value:
            return value
    except yaml.YAMLError:
        pass
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def new_plan(root: Path, title: str, plan_id: str | None = None) -> Path:
    """Write ``.plans/<id>-<slug>.md`` from the template; never overwrites, never reuses an id."""
    title = title.strip()
    if not title:
        raise PlanError("the title is empty", fix='agentflow plan new "Add rate limiting to the API"')
    ident = plan_id.strip() if plan_id else str(next_id(root))
    if not _ID.match(ident):
        raise PlanError(
            f"id {ident!r} is not a number or slug", fix="use a number like 348 or a slug like auth-refactor"
        )
    for path in find_plans(root):
        try:
            existing = load_plan(path).id
        except PlanError:
            continue
        if existing == ident:
            raise PlanError(
                f"plan id {ident} is already used by {display_path(path)}", fix="pick another --id or omit it"
            )
    path = root / PLANS_DIR / f"{ident}-{title_slug(title)}.md"
    if path.exists():
        raise PlanError("already exists", where=display_path(path), fix="edit it, or choose another --id or title")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = PLAN_TEMPLATE.format(id=ident, title=_yaml_scalar(title))
    parse_plan(text, path)  # the template must always be a valid plan
    path.write_text(text, encoding="utf-8")
    return path
