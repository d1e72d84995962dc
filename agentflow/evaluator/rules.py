"""Deterministic rules over inferred schemas.

Rules (``rule`` ids are part of the findings contract):

- ``required_field``: configured ``events.required`` (scope field -> fields): every event of a type
  carrying the scope field must carry each listed field. critical for isolation fields, else high.
- ``missing_sibling_field``: among the types sharing a scope field (a configured isolation field
  such as ``tenant_id``, or a scope of ``events.required``), a field that most of them carry
  (more than half of them, at least two) is missing from every event of some. critical for
  isolation fields (the cross-tenant leak), medium for other fields.
- ``key_segment_missing``: ``#``-delimited keys of sibling types (same field, same first label)
  mostly carry a segment (``CAPSULE#``) that a type's key template skips. When the same type already
  has an isolation-field finding for the matching field (``CAPSULE`` -> ``capsule_id``), the key
  evidence is added to that finding instead of a second finding for the same defect.
- ``key_template_inconsistent``: one type's keys in one field use templates with different labels.
- ``partial_field``: a field present in only part of one type's events.
- ``null_field``: a field that is null in some events of a type and not in others.
- ``type_mismatch``: a field whose JSON type differs between events of one type (integer and
  number count as one type).
- ``type_mismatch_across_types``: one path with different JSON types in different types: medium
  within a family (``families``), low across families.
- Scope inference (``infer_scope``): top-level fields named like a scope that most types carry are
  treated as isolation fields; a type lacking one its family (or nearly the whole log) carries is
  reported like a missing isolation field (critical).
- ``drift_*``: differences against a baseline (``agentflow.evaluator.baseline``).

Exempt types (``events.exempt_types`` globs, e.g. ``Tenant*``) are platform-level: they take no
part in the comparisons between sibling types (neither flagged nor counted as siblings), and are
never flagged for isolation fields. Explicit ``required`` rules still apply to their other fields.

Finding ids are ``EV-`` plus a hash of rule, event type, field and detail, so the same defect has
the same id in every run and the ledger can tell open from closed findings.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase, translate
from typing import Any

from agentflow.evaluator.analysis import Analysis, Finding, ShapeFields, TypeSchema
from agentflow.evaluator.keys import template_labels
from agentflow.evaluator.keys import template_labels as _template_labels
from agentflow.verdict import severity_rank  # one severity scale for verdicts and evaluator

SIBLING_SHARE = 0.5  # "most": strictly more than this share of the siblings
MIN_FAMILY = 3  # a family (name stem, source, key family) of at least this many types compares fields
CARRIER_PRESENCE = 0.9  # a type "carries" a field present in at least this share of its events
SCOPE_SHARE = 0.5  # an inferred scope field is carried by more than this share of the types ...
UBIQUITOUS_SHARE = 0.9  # ... and one carried by this share of the log's types is expected of every type
# Words that name a scope (tenant-like partition of the data) in a field name.
SCOPE_WORDS = frozenset(
    [
        "tenant",
        "org",
        "organization",
        "organisation",
        "account",
        "workspace",
        "repo",
        "repository",
        "agency",
        "customer",
        "capsule",
        "installation",
        "enterprise",
        "company",
        "subscription",
        "realm",
    ]
)
# Envelope metadata (CloudEvents attributes, EventBridge envelope keys, type discriminators): never a
# missing *domain* field; the payload of EventBridge and CloudEvents events is analysed without it.
ENVELOPE_FIELDS = frozenset(
    [
        "id",
        "type",
        "time",
        "source",
        "specversion",
        "datacontenttype",
        "dataschema",
        "subject",
        "version",
        "account",
        "region",
        "resources",
        "detail-type",
        "event_type",
        "event_id",
        "eventid",
    ]
)


@dataclass
class RuleConfig:
    isolation_fields: list[str] = field(default_factory=lambda: ["tenant_id", "capsule_id"])
    exempt_types: list[str] = field(default_factory=list)
    required: dict[str, list[str]] = field(default_factory=dict)
    infer_scope: bool = True
    sibling_share: float = SIBLING_SHARE
    min_family: int = MIN_FAMILY
    scope_share: float = SCOPE_SHARE
    type_field: str | None = None
    inferred: list[str] = field(default_factory=list)  # filled by run_rules: inferred scope paths
    exact: set[str] = field(default_factory=set)  # filled by run_rules: configured names that are paths of the log
    _memo: dict[tuple, object] = field(
        default_factory=dict, repr=False, compare=False
    )  # is_exempt, is_configured_isolation, families

    @classmethod
    def from_events(cls, events: object) -> RuleConfig:
        """From ``config.Events`` (kept duck-typed so this module does not need the config)."""
        thresholds = getattr(events, "thresholds", None)
        return cls(
            isolation_fields=list(getattr(events, "isolation_fields", ["tenant_id", "capsule_id"])),
            exempt_types=list(getattr(events, "exempt_types", [])),
            required={k: list(v) for k, v in getattr(events, "required", {}).items()},
            infer_scope=bool(getattr(events, "infer_scope", True)),
            sibling_share=float(getattr(thresholds, "sibling_share", SIBLING_SHARE)),
            min_family=int(getattr(thresholds, "min_family", MIN_FAMILY)),
            scope_share=float(getattr(thresholds, "scope_share", SCOPE_SHARE)),
            type_field=getattr(events, "type_field", None),
        )

    def is_isolation(self, path: str) -> bool:
        """A configured isolation field, named by path, leaf or a path inside it (``repo.id`` makes the
        object ``repo`` an isolation field too), or an inferred scope path."""
        return path in self.inferred or self.is_configured_isolation(path)

    def is_configured_isolation(self, path: str) -> bool:
        """``is_isolation`` by ``events.isolation_fields`` alone (memoised: asked per type and path)."""
        # run_rules clears the memo when it sets ``exact``
        known_fields, by_path = self._memo.get(("isolation",)) or (None, None)
        if by_path is None or known_fields != self.isolation_fields:
            known_fields, by_path = self._memo[("isolation",)] = (list(self.isolation_fields), {})  # type: ignore[assignment]
        known = by_path.get(path)
        if known is None:
            known = by_path[path] = self._configured_isolation(path)
        return known

    def _configured_isolation(self, path: str) -> bool:
        leaf = path.rsplit(".", 1)[-1]
        for name in self.isolation_fields:
            if path == name or name.startswith(path + "."):
                return True
            if (leaf == name or path.endswith("." + name)) and name not in self.exact:
                return True  # by leaf, unless the name is also a path of the log (then it means that one)
        return False

    def is_exempt(self, event_type: str) -> bool:
        """Whether ``events.exempt_types`` (globs) names the type (memoised per type and globs)."""
        known_globs, by_type = self._memo.get(("exempt",)) or (None, None)
        if by_type is None or known_globs != self.exempt_types:
            known_globs, by_type = self._memo[("exempt",)] = (list(self.exempt_types), {})  # type: ignore[assignment]
        known = by_type.get(event_type)
        if known is None:
            known = by_type[event_type] = any(fnmatchcase(event_type, glob) for glob in known_globs)
        return known

    def skip(self, event_type: str, path: str) -> bool:
        """Exempt types are never flagged for isolation fields."""
        return self.is_exempt(event_type) and self.is_isolation(path)

    def is_envelope(self, path: str) -> bool:
        """Envelope metadata and the type discriminator: analysed apart, never a missing domain field."""
        return path == (self.type_field or "") or ("." not in path and path in ENVELOPE_FIELDS)

    def label_field(self, label: str) -> str | None:
        """The isolation field a key label stands for: ``CAPSULE`` -> ``capsule_id``."""
        wanted = label.lower()
        for name in self.isolation_fields:
            if name.lower() in (wanted, f"{wanted}_id", f"{wanted}id"):
                return name
        return None


def finding_id(rule: str, event_type: str, path: str | None, detail: str = "") -> str:
    digest = hashlib.sha256(f"{rule}|{event_type}|{path or ''}|{detail}".encode()).hexdigest()
    return f"EV-{digest[:8]}"


def _make(
    rule: str, severity: str, schema: TypeSchema, path: str | None, message: str, evidence: dict, detail: str = ""
) -> Finding:
    return Finding(rule, severity, schema.name, path, message, evidence, id=finding_id(rule, schema.name, path, detail))


@functools.lru_cache(maxsize=65536)
def _parent_paths(path: str) -> tuple[str, ...]:
    parts = path.split(".")
    return tuple(".".join(parts[:i]) for i in range(1, len(parts)))


def run_rules(analysis: Analysis, config: RuleConfig) -> list[Finding]:
    """All schema rules, deduplicated and sorted (severity, type, field, rule).

    ``config.inferred`` is set to the inferred scope paths (``infer_scope``) first: they count as
    isolation fields for every rule."""
    where = analysis.where
    config._memo.clear()
    view = _view(analysis, config)
    paths = _all_paths(analysis, config)
    config.exact = {name for name in config.isolation_fields if name in paths}
    config._memo.clear()  # is_configured_isolation's answers depend on ``exact``; the view and paths do not
    config._memo[("view",)] = view
    config._memo[("paths",)] = (analysis, paths)
    config.inferred = infer_scope(analysis, config) if config.infer_scope else []
    findings: list[Finding] = []
    findings += required_fields(analysis, config, where)
    findings += missing_scope_fields(analysis, config, where)
    findings += missing_sibling_fields(analysis, config, where)
    findings += within_type(analysis, config, where)
    findings += type_drift(analysis, config, where)
    findings = key_segments(analysis, config, findings)
    return sort_findings(dedupe(findings))


# -- scope inference and families ------------------------------------------------------------------


def _words(name: str) -> list[str]:
    """``agency_identification`` -> [agency, identification]; ``repoId`` -> [repo, id]."""
    spaced = _CAMEL.sub(" ", name)
    return [w for w in _NON_WORD.split(spaced.lower()) if w]


# A space between a lower-case letter or digit and an upper-case letter: as ``([a-z0-9])([A-Z])`` ->
# ``\1 \2`` (an upper-case letter never starts another match), without a template to expand per match.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")
# The first of ``_words`` of an ASCII name: past the separators, capitals then lower-case letters
# and digits (a capital after a lower-case letter or digit starts the next word; ``_CAMEL``).
_FIRST_WORD = re.compile(r"[^A-Za-z0-9]*([A-Z]*[a-z0-9]*)")


def _present(schema: TypeSchema) -> Any:
    """``schema``'s paths for membership tests: the ``ShapeFields.paths`` dict of a type of one shape
    (shared by the types of that shape; ``in`` on the mapping itself is a Python call), else its
    fields."""
    fields = schema.fields
    return fields.paths if type(fields) is ShapeFields else fields


def _distinct(types: list[TypeSchema]) -> dict[int, tuple[Any, list[TypeSchema]]]:
    """The types grouped by their paths (``_present``): types of one shape share one dict, so what
    depends only on the paths is asked once per shape, not once per type."""
    out: dict[int, tuple[Any, list[TypeSchema]]] = {}
    for t in types:
        fields = t.fields
        present = fields.paths if type(fields) is ShapeFields else fields  # _present, inlined
        entry = out.get(id(present))
        if entry is None:
            out[id(present)] = (present, [t])
        else:
            entry[1].append(t)
    return out


class _View:
    """What the rules of one run ask of every type, computed once (``_view``): the exempt names,
    each type's paths (``_present``), the types grouped by their paths, the non-exempt types with
    events by envelope format, and (when first asked) each type's carried paths. With 2,000
    types the rules asked ``is_exempt`` 20,000 times and ``_present`` 26,000 times, and grouped
    the same types by their paths seven times (benchmarks/README.md, eleventh round)."""

    __slots__ = ("analysis", "exempt", "present", "distinct", "active", "formats", "_carried", "_by_name")

    def __init__(self, analysis: Analysis, config: RuleConfig):
        types = analysis.types
        self.analysis = analysis
        self.exempt = _exempt_names(types, config)
        self.distinct = _distinct(types)
        # name -> paths (a type of one shape: the dict its shape's types share)
        self.present = {t.name: present for present, group in self.distinct.values() for t in group}
        exempt = self.exempt
        self.active = [t for t in types if t.count and t.name not in exempt]  # in the analysis' order
        formats: dict[str, list[TypeSchema]] = {}
        for t in self.active:
            formats.setdefault(t.envelope, []).append(t)
        self.formats = formats
        self._carried: dict[str, set[str] | frozenset[str]] | None = None
        self._by_name: dict[str, TypeSchema] | None = None

    def carried(self) -> dict[str, set[str] | frozenset[str]]:
        """Every type's ``_carried`` by name (once per shape for the types of one shape)."""
        carried = self._carried
        if carried is None:
            carried = self._carried = {}
            by_fields: dict[int, frozenset[str]] = {}
            for t in self.analysis.types:
                if t.uniform and t.count:
                    known = by_fields.get(id(t.shape_fields))
                    if known is None:
                        known = by_fields[id(t.shape_fields)] = _carried(t)  # type: ignore[assignment]
                    carried[t.name] = known  # type: ignore[assignment]
                else:
                    carried[t.name] = _carried(t)
        return carried

    def by_name(self) -> dict[str, TypeSchema]:
        """The types by name (the first of a name, as ``Analysis.type``)."""
        by_name = self._by_name
        if by_name is None:
            by_name = self._by_name = {}
            for t in self.analysis.types:
                by_name.setdefault(t.name, t)
        return by_name


def _view(analysis: Analysis, config: RuleConfig) -> _View:
    """The run's ``_View`` of ``analysis``, kept in ``config``'s memo (``run_rules`` resets it)."""
    known = config._memo.get(("view",))
    if known is not None and known.analysis is analysis:  # type: ignore[attr-defined]
        return known  # type: ignore[return-value]
    view = config._memo[("view",)] = _View(analysis, config)
    return view


def _exempt_names(types: list[TypeSchema], config: RuleConfig) -> frozenset[str]:
    """The names ``config.is_exempt`` names, all at once: one regular expression for all the globs
    (``fnmatch.translate`` of each, anchored), not a Python call per type and glob."""
    if not config.exempt_types:
        return frozenset()
    matches = re.compile("|".join(f"(?:{translate(glob)})" for glob in config.exempt_types)).match
    return frozenset(t.name for t in types if matches(t.name))


def _all_paths(analysis: Analysis, config: RuleConfig) -> set[str]:
    """Every path of every type (once per distinct set of paths); kept in ``config``'s memo for
    this analysis (``run_rules`` clears it). Read only."""
    known = config._memo.get(("paths",))
    if known is not None and known[0] is analysis:  # type: ignore[index]
        return known[1]  # type: ignore[index]
    paths: set[str] = set().union(*(present for present, _ in _view(analysis, config).distinct.values()))
    config._memo[("paths",)] = (analysis, paths)
    return paths


def _carries(schema: TypeSchema, path: str) -> bool:
    if schema.uniform and schema.count and "." not in path:  # every field in every event, one JSON type
        return path in _carried(schema)  # carried unless always null
    stats = schema.fields.get(path)
    if stats is None or not schema.count:
        return False
    present = stats.count - stats.types.get("null", 0)
    base = schema.parent_objects(path)
    return base > 0 and present / base >= CARRIER_PRESENCE


def _carried(schema: TypeSchema) -> set[str] | frozenset[str]:
    """The paths ``schema`` carries (``_carries``), all at once (read only: the types of one shape
    share one set)."""
    if schema.uniform and schema.count:  # every field in every event: carried unless always null
        fields = schema.shape_fields
        known = _CARRIED.get(id(fields))
        if known is None or known[0] is not fields:
            if len(_CARRIED) >= 4096:
                _CARRIED.clear()
            known = _CARRIED[id(fields)] = (fields, frozenset(p for p, json_type in fields if json_type != "null"))
        return known[1]
    return {path for path in schema.fields if _carries(schema, path)}


# shape fields (by identity: build_analysis gives the types of one shape one tuple) -> (them, carried)
_CARRIED: dict[int, tuple[Any, frozenset[str]]] = {}


def infer_scope(analysis: Analysis, config: RuleConfig) -> list[str]:
    """The log's scope fields: top-level fields named like a scope (tenant, org, account, repo,
    agency, ...: ``SCOPE_WORDS``) that more than ``scope_share`` of the (non-exempt) types of one
    envelope format have (in some of their events), at least three. They partition the data the way a tenant id does."""
    inferred: list[str] = []
    for group in _view(analysis, config).formats.values():
        distinct = [(present, len(types)) for present, types in _distinct(group).values()]
        candidates = sorted(
            p for p in set().union(*(present for present, _ in distinct)) if "." not in p and not config.is_envelope(p)
        )
        for path in candidates:
            if not SCOPE_WORDS.intersection(_words(path)) or path in inferred:
                continue
            carrying = sum(
                n for present, n in distinct if path in present
            )  # in any of its events: partial scopes count
            if carrying >= 3 and carrying / len(group) > config.scope_share:
                inferred.append(path)
    return inferred


@functools.lru_cache(maxsize=65536)
def name_stem(name: str) -> str:
    """The entity a type name is about: ``AccountCreated`` -> account, ``IssuesEvent`` -> issue,
    ``check_run`` -> check, ``com.acme.task.created`` -> com.acme.task, ``Object Created`` -> object."""
    if "." in name:
        return name.rsplit(".", 1)[0].lower()
    if " " in name or "_" in name or "-" in name:  # words: the first one names the entity or service
        return re.split(r"[ _-]+", name.strip())[0].lower() or name.lower()
    base = name.removesuffix("Event") if name != "Event" else name
    if base.isascii():  # _words(base)[0] without splitting the whole name (its regexes tried every position)
        first = _FIRST_WORD.match(base).group(1).lower()  # type: ignore[union-attr]
    else:
        words = _words(base)
        first = words[0] if words else ""
    if not first:
        return name.lower()
    # CamelCase: IssuesEvent and IssueCommentEvent are both about an issue
    return first[:-1] if len(first) > 3 and first.endswith("s") and not first.endswith("ss") else first


class Families:
    """Per type, the other types that plausibly share its contract (``families``).

    Kept as the groups (stem, source, key family) each type belongs to, not as a set of peers per
    type: one key family of 2,000 types made that 4 million set entries. ``members`` (the type and
    its peers) is one shared frozenset for every type in the same groups, and is the largest group
    itself when that contains the others (the usual case). ``of``: name -> the index of its groups'
    keys in ``keys`` (the types of one signature share them)."""

    def __init__(
        self, groups: dict[tuple[str, ...], set[str]], of: dict[str, int], keys: list[tuple[tuple[str, ...], ...]]
    ):
        self._groups = {key: frozenset(names) for key, names in groups.items()}
        self._of = of
        self._keys = keys
        self._members: list[frozenset[str] | None] = [None] * len(keys)

    def __contains__(self, name: str) -> bool:
        return name in self._of

    def members(self, name: str) -> frozenset[str]:
        """The type and its peers (empty for a type that takes no part: exempt, or without events)."""
        index = self._of.get(name)
        if index is None:
            return frozenset()
        found = self._members[index]
        if found is None:
            groups = sorted((self._groups[key] for key in self._keys[index]), key=len, reverse=True)
            found, rest = groups[0], [g for g in groups[1:] if not g <= groups[0]]
            if rest:
                found = found.union(*rest)
            self._members[index] = found
        return found

    def get(self, name: str, default: object = ()) -> set[str]:
        """The peers of ``name`` (itself excluded), as ``dict.get`` on the former mapping."""
        if name not in self._of:
            return default  # type: ignore[return-value]
        return set(self.members(name)) - {name}


def _family_signatures(analysis: Analysis, config: RuleConfig) -> list[tuple[tuple[Any, ...], list[str]]]:
    """The non-exempt types with events grouped by all ``families`` reads of a type: (envelope, name
    stem, source, its key fields' leading labels), each with its names in the analysis' order; once
    per run for both kinds of family (kept in ``config``'s memo)."""
    known = config._memo.get(("signatures", id(analysis)))
    if known is not None:
        return known  # type: ignore[return-value]
    leading: dict[str, str | None] = {}  # template -> its first label when the template starts with it
    by_signature: dict[tuple[Any, ...], list[str]] = {}
    for t in _view(analysis, config).active:
        labels: list[tuple[str, str]] = []
        for path, counts in t.key_templates.items():
            for template in counts:
                if template not in leading:
                    found = template_labels(template)
                    leading[template] = found[0] if found and template.startswith(found[0]) else None
                first = leading[template]
                if first is not None:
                    labels.append((path, first))
        signature = (t.envelope, name_stem(t.name), t.source, tuple(labels))
        names = by_signature.get(signature)
        if names is None:
            by_signature[signature] = [t.name]
        else:
            names.append(t.name)
    found_signatures = config._memo[("signatures", id(analysis))] = list(by_signature.items())
    return found_signatures


def families(analysis: Analysis, config: RuleConfig, strict: bool = False) -> Families:
    """Per type, the other types that plausibly share its contract: same name stem, same envelope
    source (EventBridge/CloudEvents ``source``), or keys starting with the same label; always of the
    same envelope format, never exempt types. ``strict``: the name stem within one source (the
    entity: ``Object Created``/``Object Deleted`` of aws.s3), or the key family.

    Kept in ``config``'s memo for the run (``run_rules`` clears it): two rules ask for the same.
    Built once per signature (``_family_signatures``), not once per type."""
    memo_key = ("families", id(analysis), strict)
    known = config._memo.get(memo_key)
    if known is not None:
        return known  # type: ignore[return-value]
    groups: dict[tuple[str, ...], set[str]] = {}
    of: dict[str, int] = {}
    keys_index: dict[tuple[tuple[str, ...], ...], int] = {}
    for (envelope, stem, source, labels), names in _family_signatures(analysis, config):
        keys = [("stem", envelope, stem, source if strict else "")]
        if source and not strict:
            keys.append(("source", envelope, source))
        keys += [("key", envelope, path, first) for path, first in labels]
        unique = tuple(dict.fromkeys(keys))
        for key in unique:
            groups.setdefault(key, set()).update(names)
        index = keys_index.setdefault(unique, len(keys_index))
        of.update(dict.fromkeys(names, index))
    found = config._memo[memo_key] = Families(groups, of, list(keys_index))  # type: ignore[assignment]
    return found


def missing_scope_fields(analysis: Analysis, config: RuleConfig, where) -> list[Finding]:
    """A type lacking a scope field (configured or inferred) that its family carries, or that nearly
    every type of the log carries: the missing isolation field, at critical."""
    out: list[Finding] = []
    family: Families | None = None  # built when a scope path is missing (most logs: never)
    scope_paths = sorted(
        {p for p in _all_paths(analysis, config) if config.is_isolation(p) and not _inside_map(p)},
        key=lambda p: (p.count("."), p),
    )
    view = _view(analysis, config)
    by_format = view.formats  # per envelope format, the non-exempt types with events
    format_names: dict[str, frozenset[str]] = {}
    carried: dict[str, frozenset[str]] = {}

    def carriers_of(path: str) -> frozenset[str]:
        """The non-exempt types with events that carry ``path`` (once per path, not per type and path)."""
        found = carried.get(path)
        if found is None:
            found = carried[path] = frozenset(
                t.name for group in by_format.values() for t in group if path in _present(t) and _carries(t, path)
            )
        return found

    # What depends only on a type's paths, once per shape for the types of one shape: the scope
    # paths it lacks, each with the outermost missing object to report (a configured leaf
    # ``agency.agencyId`` whose ``agency`` object is gone reports ``agency``), none whose parent is
    # never an object here (always null: nothing is missing).
    lacking_of: dict[int, list[tuple[str, str]]] = {}
    for schema in view.active:
        fields = schema.fields
        shared = type(fields) is ShapeFields
        present = fields.paths if shared else fields  # type: ignore[union-attr]
        lacking = lacking_of.get(id(present)) if shared else None
        if lacking is None:
            lacking = _lacking_scopes(schema, present, scope_paths)
            if shared:
                lacking_of[id(present)] = lacking
        if not lacking:
            continue  # the usual case: nothing missing
        flagged: set[str] = set()
        peers: frozenset[str] | None = None  # built when a scope path is missing (rare): 2,000 types made it O(n^2)
        for path, missing in lacking:
            if missing in flagged:
                continue
            if peers is None:
                if family is None:
                    family = families(analysis, config)
                peers = family.members(schema.name) - {schema.name}
                if schema.envelope not in format_names:
                    format_names[schema.envelope] = frozenset(t.name for t in by_format[schema.envelope])
                same_format = len(by_format.get(schema.envelope, [])) - (schema.name in format_names[schema.envelope])
            carrying = carriers_of(path)
            in_family = sorted(carrying & peers)
            in_log = sorted(carrying & format_names[schema.envelope] - {schema.name})
            by_family = len(in_family) >= 1 and len(in_family) / len(peers) > config.sibling_share
            ubiquitous = len(in_log) >= 3 and len(in_log) / same_format >= UBIQUITOUS_SHARE
            if not (by_family or ubiquitous):
                continue
            flagged.add(missing)
            carriers = in_family if by_family else in_log
            scope = "its family" if by_family else "the log"
            via = f" ({path} is in it)" if missing != path else ""
            out.append(
                _make(
                    "missing_sibling_field",
                    "critical",
                    schema,
                    missing,
                    f"{schema.name} lacks {missing}{via}, a scope field that {len(carriers)} of "
                    f"{len(peers) if by_family else same_format} event types of {scope} carry "
                    "(an isolation field: a cross-tenant leak risk)",
                    {
                        "events": schema.count,
                        "missing": schema.count,
                        "scope": path,
                        "inferred_scope": path in config.inferred,
                        "siblings_with_field": sorted(carriers),
                        "sample_lines": _samples(where, schema.lines),
                    },
                )
            )
    return out


def _lacking_scopes(schema: TypeSchema, present: Any, scope_paths: list[str]) -> list[tuple[str, str]]:
    """``missing_scope_fields``' (scope path, the outermost missing object) pairs of a type with
    these paths: what depends on its paths alone (the same for the types of one shape)."""
    out = []
    for path in scope_paths:
        if path in present and "." not in path:
            continue
        missing = next((p for p in [*_parent_paths(path), path] if p not in present), None)
        if missing is None:
            continue
        if "." in missing and schema.fields[missing.rsplit(".", 1)[0]].types.get("object", 0) == 0:
            continue  # its parent is never an object here (always null): nothing is missing
        out.append((path, missing))
    return out


def unmatched_fields(analysis: Analysis, config: RuleConfig) -> list[str]:
    """A warning per configured isolation field that names nothing in the log (a typo, or the wrong
    log): the scope it should protect is not checked at all."""
    paths = _all_paths(analysis, config)
    out = []
    for name in config.isolation_fields:
        if not any(p == name or p.endswith("." + name) or name.startswith(p + ".") for p in paths):
            out.append(
                f"warning: isolation field {name} (events.isolation_fields) matches no field of these logs;"
                " check its spelling or the logs"
            )
    return out


def _inside_map(path: str) -> bool:
    return "{*}" in path


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-severity_rank(f.severity), f.event_type, f.field or "", f.rule, f.id))


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per defect: an explicit ``required_field`` beats the inferred rules on the same field."""
    required = {(f.event_type, f.field) for f in findings if f.rule == "required_field"}
    seen: set[str] = set()
    out = []
    for f in findings:
        if f.rule in ("missing_sibling_field", "partial_field") and (f.event_type, f.field) in required:
            continue
        if f.id not in seen:
            seen.add(f.id)
            out.append(f)
    return out


def _samples(where, locations) -> list[str]:
    return [where(location) for location in locations]


# -- explicit rules ----------------------------------------------------------------------------------


def required_fields(analysis: Analysis, config: RuleConfig, where) -> list[Finding]:
    out = []
    for scope, wanted in config.required.items():
        for schema in analysis.types:
            if scope not in schema.fields:
                continue
            for path in wanted:
                if config.skip(schema.name, path):
                    continue
                stats = schema.fields.get(path)
                present = stats.count if stats else 0
                if present >= schema.count:
                    continue
                severity = "critical" if config.is_isolation(path) else "high"
                lines = stats.missing_lines if stats else schema.lines
                out.append(
                    _make(
                        "required_field",
                        severity,
                        schema,
                        path,
                        f"{schema.name} events carry {scope} but {schema.count - present} of {schema.count} "
                        f"lack {path}, which the configuration requires",
                        {
                            "events": schema.count,
                            "missing": schema.count - present,
                            "scope": scope,
                            "sample_lines": _samples(where, lines),
                        },
                    )
                )
    return out


# -- inferred rules --------------------------------------------------------------------------------


def scope_fields(analysis: Analysis, config: RuleConfig) -> list[str]:
    scopes = list(dict.fromkeys([*config.isolation_fields, *config.required]))  # inferred: missing_scope_fields
    present = [p for p, _ in _distinct(analysis.types).values()]
    return [s for s in scopes if any(s in p for p in present)]


def missing_sibling_fields(analysis: Analysis, config: RuleConfig, where) -> list[Finding]:
    """Fields a type lacks that its siblings carry.

    Isolation fields are compared among all the types sharing a scope field (``RoleAssignmentCreated``
    lacks the ``capsule_id`` that most tenant-scoped types carry): critical. Other fields are compared
    only within the type's family (``families``: same name stem, source or key family) of at least
    ``min_family`` types, and only fields most of the family carry (``sibling_share``): medium. Fields
    many unrelated entity kinds share by accident, envelope metadata and the keys of map-like objects
    are never compared."""
    out: list[Finding] = []
    view = _view(analysis, config)
    exempt, present_of = view.exempt, view.present
    # Computed once per type, not per pair of types: 2,000 types made this loop quadratic (minutes).
    carried = view.carried()
    by_id = {id(paths): paths for paths in carried.values()}
    isolation = {p for p in _all_paths(analysis, config) if config.is_configured_isolation(p) and not _inside_map(p)}
    for scope in scope_fields(analysis, config):
        # The siblings (the non-exempt types with events that have the scope), by their paths: what
        # depends on the paths alone is decided once per shape, not once per type.
        groups: list[tuple[Any, list[TypeSchema]]] = []
        for present, types in view.distinct.values():
            if scope in present:
                alike = [t for t in types if t.count and t.name not in exempt]
                if alike:
                    groups.append((present, alike))
        siblings = {t.name for _, alike in groups for t in alike}
        if len(siblings) < 2:
            continue
        # The isolation paths of the siblings, and how many siblings carry each (in name order, who:
        # when one is reported). A path the type itself has is skipped below, so the type's own
        # entry never counts.
        union: set[str] = set().union(*(present.keys() & isolation for present, _ in groups))
        names = sorted(siblings)
        by_carried = Counter(map(id, map(carried.__getitem__, names)))
        carrying_count = {p: sum(n for paths, n in by_carried.items() if p in by_id[paths]) for p in union}
        carriers: dict[str, list[str]] = {}
        ordered = sorted(union, key=lambda p: (p.count("."), p))
        for present, alike in groups:
            lacking = [
                path
                for path in ordered
                if path not in present
                and all(parent in present for parent in _parent_paths(path))
                and carrying_count[path] >= 2
                and carrying_count[path] / len(siblings) > config.sibling_share
            ]
            for schema in alike if lacking else ():  # exempt types are not in ``alike``: never skipped
                for path in lacking:
                    carrying = carriers.get(path)
                    if carrying is None:
                        carrying = carriers[path] = [n for n in names if path in carried[n]]
                    out.append(
                        _make(
                            "missing_sibling_field",
                            "critical",
                            schema,
                            path,
                            f"{schema.name} lacks {path}, which {len(carrying)} of {len(siblings)} event types sharing "
                            f"{scope} carry (an isolation field: a cross-tenant leak risk)",
                            {
                                "events": schema.count,
                                "missing": schema.count,
                                "scope": scope,
                                "siblings_with_field": sorted(carrying),
                                "sample_lines": _samples(where, schema.lines),
                            },
                        )
                    )
    family = families(analysis, config, strict=True)
    # Per family (its members, the type included; one shared set for all of them), the fields that
    # most of the members carry, in the order they are reported, and who carries each: what does
    # not depend on the type is decided once per family, not once per type and path (2,000 types
    # of one key family made that 4 million checks); what depends on the type's paths too, once
    # per family and shape. A path the type has is skipped below, so the type's own entry never
    # counts.
    by_group: dict[frozenset[str], tuple[list[str], dict[str, list[str]], list[str]]] = {}
    reported_of: dict[tuple[int, int], list[str]] = {}  # (id of a family's entry, id of the paths) -> paths
    for schema in analysis.types:
        members = family.members(schema.name) or frozenset([schema.name])
        peers = len(members) - 1
        if peers + 1 < config.min_family:
            continue
        # Only the fields of an object the type shares with its family (the entity's contract:
        # ``repository.disabled``); top-level fields differ by design between the kinds of event
        # of one entity (``action`` of workflow_run, not of workflow_dispatch): low.
        entry = by_group.get(members)
        if entry is None:
            names = sorted(members)
            carrying_count_: Counter[str] = Counter()
            for paths, n in Counter(map(id, map(carried.__getitem__, names))).items():
                carrying_count_.update(dict.fromkeys(by_id[paths], n))  # the types of one shape share one set
            union = set().union(*{id(present): present for present in map(present_of.__getitem__, names)}.values())
            candidates = [
                p
                for p in sorted(union, key=lambda p: (p.count("."), p))
                if carrying_count_[p] >= 2
                and carrying_count_[p] / peers > config.sibling_share
                and not (config.is_isolation(p) or config.is_envelope(p) or _inside_map(p))
            ]
            entry = by_group[members] = (candidates, {}, names)  # {}: the carriers of a path, once reported
        candidates, peer_carriers, names = entry
        fields = schema.fields
        shared = type(fields) is ShapeFields
        present = fields.paths if shared else fields  # type: ignore[union-attr]
        key = (id(entry), id(present))
        reported = reported_of.get(key) if shared else None
        if reported is None:
            reported = _family_lacking(schema, present, candidates)
            if shared:
                reported_of[key] = reported
        for path in reported:
            carrying = peer_carriers.get(path)
            if carrying is None:
                carrying = peer_carriers[path] = [name for name in names if path in carried[name]]
            out.append(
                _make(
                    "missing_sibling_field",
                    "medium" if "." in path else "low",
                    schema,
                    path,
                    f"{schema.name} lacks {path}, which {len(carrying)} of the {peers} other event types of "
                    "its family carry",
                    {
                        "events": schema.count,
                        "missing": schema.count,
                        "family": [name for name in names if name != schema.name],
                        "siblings_with_field": list(carrying),
                        "sample_lines": _samples(where, schema.lines),
                    },
                )
            )
    return out


def _family_lacking(schema: TypeSchema, present: Any, candidates: list[str]) -> list[str]:
    """The family's ``candidates`` a type with these paths lacks and is reported for: the outermost
    (a path under one reported is not), and only inside objects it has (never an object here:
    nullable). What depends on the paths alone: the same for the types of one shape."""
    reported: list[str] = []
    flagged: set[str] = set()
    for path in candidates:
        if path in present:
            continue
        parents = _parent_paths(path)
        if any(parent in flagged or parent not in present for parent in parents):
            continue  # the parent is reported, or missing / never an object here (nullable)
        if any(schema.fields[parent].types.get("object", 0) == 0 for parent in parents):
            continue
        flagged.add(path)
        reported.append(path)
    return reported


def within_type(analysis: Analysis, config: RuleConfig, where) -> list[Finding]:
    out: list[Finding] = []
    exempt = _view(analysis, config).exempt
    for schema in analysis.types:
        if schema.uniform:
            continue  # every field in every event with one JSON type: nothing partial, null or mixed
        exempt_type = schema.name in exempt
        for path, stats in schema.fields.items():
            if exempt_type and config.is_isolation(path):
                continue  # config.skip
            if "{*}" in path:
                continue  # the keys of a map-like object vary by design (_inside_map)
            parent_count = schema.parent_objects(path)  # nullable parents: over the events where it is an object
            nulls = stats.types.get("null", 0)
            kinds = _kinds(stats)
            if not (stats.count < parent_count or 0 < nulls < stats.count or len(kinds) > 1):
                continue  # the usual case: nothing to report
            # Inferred scopes are less certain than configured ones: a scope field present in part of
            # a type's events is common and legitimate (a ping of an organization-wide hook): low.
            strong = config.is_configured_isolation(path)
            if stats.count < parent_count:
                out.append(
                    _make(
                        "partial_field",
                        "high" if strong else "low",
                        schema,
                        path,
                        f"{path} is present in {stats.count} of {parent_count} {schema.name} events"
                        + (" whose parent is an object" if "." in path else ""),
                        {
                            "events": schema.count,
                            "present": stats.count,
                            "missing": parent_count - stats.count,
                            "presence": round(stats.count / parent_count, 4),
                            "sample_lines_missing": _samples(where, stats.missing_lines),
                        },
                    )
                )
            if 0 < nulls < stats.count:
                out.append(
                    _make(
                        "null_field",
                        "high" if strong else "low",
                        schema,
                        path,
                        f"{path} is null in {nulls} of {stats.count} {schema.name} events that carry it",
                        {
                            "events": schema.count,
                            "null": nulls,
                            "sample_lines_null": _samples(where, stats.lines_by_type.get("null", [])),
                        },
                    )
                )
            if len(kinds) > 1:
                out.append(
                    _make(
                        "type_mismatch",
                        "high" if strong else "medium",
                        schema,
                        path,
                        f"{path} has different JSON types across {schema.name} events: "
                        + ", ".join(f"{t} ({n})" for t, n in sorted(stats.types.items())),
                        {
                            "events": schema.count,
                            "types": dict(sorted(stats.types.items())),
                            "sample_lines": {t: _samples(where, ls) for t, ls in sorted(stats.lines_by_type.items())},
                        },
                    )
                )
    return out


_KINDS: dict[tuple[str, ...], frozenset[str]] = {}
_KIND_OF: dict[str, frozenset[str]] = {}  # _kinds of a field with one JSON type


def _kind_of(json_type: str) -> frozenset[str]:
    kinds = _KIND_OF.get(json_type)
    if kinds is None:
        kinds = _KIND_OF[json_type] = _kinds_of((json_type,))
    return kinds


def _kinds_of(seen: tuple[str, ...]) -> frozenset[str]:
    return frozenset(("number" if t == "integer" else t) for t in seen if t != "null")


def _kinds(stats) -> frozenset[str]:
    """The JSON types of a field, integer and number as one, null left out (memoised: a few type sets)."""
    seen = tuple(stats.types)
    kinds = _KINDS.get(seen)
    if kinds is None:
        kinds = _KINDS[seen] = _kinds_of(seen)
    return kinds


def type_drift(analysis: Analysis, config: RuleConfig, where) -> list[Finding]:
    """One path, different JSON types in different event types (``repository.created_at`` an integer
    in PushEvent, a string in the others): medium when a type of the same family has the usual type,
    low across families. Types whose own events disagree are ``type_mismatch`` instead."""
    out: list[Finding] = []
    family: Families | None = None  # built when a type is reported (most logs: never)
    # path -> kinds -> the names of the types with that one kind, in lists (a list per shape for the
    # types of one shape): a path of one kind in every type (most paths) is skipped without
    # a step per type.
    by_path: dict[str, dict[frozenset[str], list[list[str]]]] = {}
    # types of one shape by its fields: by the tuple's identity first (build_analysis gives the
    # types of one shape one tuple: no hash of the fields per type), then by its value
    by_tuple: dict[int, tuple[tuple[tuple[str, str], ...], list[str]]] = {}
    for schema in analysis.types:
        shape_fields = schema.shape_fields
        if schema.uniform and shape_fields is not None:
            known = by_tuple.get(id(shape_fields))
            if known is None:
                by_tuple[id(shape_fields)] = (shape_fields, [schema.name])
            else:
                known[1].append(schema.name)
            continue
        for path, stats in schema.fields.items():
            kinds = _kinds(stats)
            if len(kinds) == 1 and not _inside_map(path):
                by_path.setdefault(path, {}).setdefault(kinds, []).append([schema.name])
    alike: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for shape_fields, names in by_tuple.values():
        if shape_fields in alike:
            alike[shape_fields] += names
        else:
            alike[shape_fields] = names
    kind_of = _KIND_OF
    for fields, names in alike.items():  # each field's one JSON type is the shape's: once per shape
        for path, json_type in fields:
            kinds = kind_of.get(json_type)
            if kinds is None:
                kinds = _kind_of(json_type)
            if kinds and "{*}" not in path:  # _inside_map
                by_kinds = by_path.get(path)
                if by_kinds is None:
                    by_path[path] = {kinds: [names]}
                else:
                    by_kinds.setdefault(kinds, []).append(names)
    by_name: dict[str, TypeSchema] | None = None
    for path, by_kinds in sorted(by_path.items()):
        if len(by_kinds) < 2:
            continue
        per_type = {name: kinds for kinds, lists in by_kinds.items() for names in lists for name in names}
        tally: dict[frozenset[str], int] = {}
        for kinds in per_type.values():
            tally[kinds] = tally.get(kinds, 0) + 1
        usual = max(tally.items(), key=lambda item: (item[1], sorted(item[0])))[0]
        if tally[usual] * 2 <= len(per_type):
            continue  # no usual type to compare with
        if family is None:
            family = families(analysis, config)
            by_name = _view(analysis, config).by_name()
        # by a family (its shared set, kept in the entry): its types with the usual type
        with_usual: dict[int, tuple[frozenset[str], list[str]]] = {}
        for name, kinds in sorted(per_type.items()):
            if kinds == usual:
                continue
            members = family.members(name)  # the type's own kinds are not the usual: never in the list
            known_usual = with_usual.get(id(members))
            if known_usual is None or known_usual[0] is not members:
                known_usual = with_usual[id(members)] = (
                    members,
                    sorted(n for n in members if per_type.get(n) == usual),
                )
            same_family = list(known_usual[1])
            schema = by_name[name]  # type: ignore[index]
            schema = analysis.type(name)
            out.append(
                _make(
                    "type_mismatch_across_types",
                    "medium" if same_family else "low",
                    schema,
                    path,
                    f"{path} is {'/'.join(sorted(kinds))} in {name} but {'/'.join(sorted(usual))} in "
                    f"{tally[usual]} other event types" + (" of its family" if same_family else ""),
                    {
                        "events": schema.count,
                        "types": sorted(kinds),
                        "usual_types": sorted(usual),
                        "types_with_usual": same_family or tally[usual],
                        "sample_lines": _samples(where, schema.lines),
                    },
                )
            )
    return out


def _labels_of(counts: dict[str, int]) -> dict[str, int]:
    """Template -> events, without the overflow bucket."""
    return {t: n for t, n in counts.items() if "#" in t}


def key_segments(analysis: Analysis, config: RuleConfig, findings: list[Finding]) -> list[Finding]:
    """Key templates that skip a segment their siblings carry, and inconsistent templates in one type."""
    out = list(findings)
    exempt = _view(analysis, config).exempt
    # (type, path) -> the members' (schema, template counts, their templates: one tuple per distinct
    # list of templates, shared by the members with that list)
    by_field: dict[tuple[str, str], list[tuple[TypeSchema, dict[str, int], tuple[str, ...]]]] = {}
    known: dict[str, list[str]] = {}

    def template_labels(template: str) -> list[str]:  # keys.template_labels, once per template
        found = known.get(template)
        if found is None:
            found = known[template] = _template_labels(template)
        return found

    # What depends only on a field's templates (not on their counts), once per distinct list of
    # templates: (templates with a label, whether their labels differ, [(first label, its templates,
    # whether they are all the field's templates in order: then the counts are the member's own)]).
    by_templates: dict[tuple[str, ...], tuple[list[str], bool, list[tuple[str, tuple[str, ...], bool]]]] = {}
    for schema in analysis.types:
        for path, counts in schema.key_templates.items():
            signature = tuple(counts)
            known_templates = by_templates.get(signature)
            if known_templates is None:
                labelled = [t for t in signature if "#" in t]
                firsts: dict[str, list[str]] = {}
                for t in labelled:
                    if labels := template_labels(t):
                        firsts.setdefault(labels[0], []).append(t)
                mixed = len({tuple(template_labels(t)) for t in labelled}) > 1
                firsts_of = [(first, tuple(ts), tuple(ts) == signature) for first, ts in firsts.items()]
                known_templates = by_templates[signature] = (labelled, mixed, firsts_of)
            labelled, mixed, firsts_of = known_templates
            if not labelled:
                continue
            if mixed and schema.name not in exempt:
                templates = {t: counts[t] for t in labelled}
                out.append(
                    _make(
                        "key_template_inconsistent",
                        "medium",
                        schema,
                        path,
                        f"{schema.name}.{path} keys use {len(templates)} templates: " + ", ".join(sorted(templates)),
                        {"events": schema.count, "templates": dict(sorted(templates.items()))},
                    )
                )
            # A template without any label ("{}#{}", from keys such as "#x") has no first label
            # and no sibling to compare with.
            for first, with_first, whole in firsts_of:
                member = (schema, counts if whole else {t: counts[t] for t in with_first}, with_first)
                by_field.setdefault((path, first), []).append(member)  # read only: counts may be the type's
    isolation_findings: dict[str, list[Finding]] | None = None  # by type, those _key_finding extends
    for (path, _first), members in sorted(by_field.items()):
        members = [member for member in members if member[0].name not in exempt]
        if len(members) < 2:
            continue
        # by a member's templates (members share a few; one tuple each): its types' names
        by_signature: dict[int, tuple[tuple[str, ...], list[str]]] = {}
        for schema, _, signature in members:
            entry = by_signature.get(id(signature))
            if entry is None:
                by_signature[id(signature)] = (signature, [schema.name])
            else:
                entry[1].append(schema.name)
        label_types: dict[str, set[str]] = {}
        for signature, names in by_signature.values():
            for label in {label for t in signature for label in template_labels(t)}:
                label_types.setdefault(label, set()).update(names)
        common = [
            (label, names)
            for label, names in sorted(label_types.items())
            if len(names) >= 2 and len(names) / len(members) > SIBLING_SHARE
        ]
        # by a member's templates: [(label, its carriers, the templates lacking it)], labels lacked only
        lacking_of: dict[int, list[tuple[str, set[str], list[str]]]] = {}
        for signature, _ in by_signature.values():
            lacked = [
                (label, names, [t for t in signature if label not in template_labels(t)]) for label, names in common
            ]
            lacking_of[id(signature)] = [entry for entry in lacked if entry[2]]
        if not any(lacking_of.values()):
            continue  # the usual case: every member carries every common label
        if isolation_findings is None:
            isolation_findings = {}
            for existing in findings:
                if existing.field is not None and existing.rule in ("missing_sibling_field", "required_field"):
                    isolation_findings.setdefault(existing.event_type, []).append(existing)
        carriers: dict[str, list[str]] = {}  # by label: its carriers, sorted
        for schema, templates, signature in members:
            for label, names, without in lacking_of[id(signature)]:
                lacking = {t: templates[t] for t in without}
                if label not in carriers:
                    carriers[label] = sorted(names)
                out = _key_finding(
                    out, isolation_findings, config, schema, path, label, lacking, list(carriers[label]), len(members)
                )
    return out


def _key_finding(
    out: list[Finding],
    isolation_findings: dict[str, list[Finding]],
    config: RuleConfig,
    schema: TypeSchema,
    path: str,
    label: str,
    lacking: dict[str, int],
    carriers: list[str],
    siblings: int,
) -> list[Finding]:
    isolation_field = config.label_field(label)
    evidence = {
        "templates": dict(sorted(lacking.items())),
        "segment": f"{label}#",
        "siblings_with_segment": carriers,
        "key_field": path,
    }
    if isolation_field is not None:
        # ``out``'s findings of these rules are those ``key_segments`` was given (it adds none), by
        # type in ``out``'s order: the first of the type for the field is the one ``out`` has first
        for existing in isolation_findings.get(schema.name, ()):
            if existing.field.rsplit(".", 1)[-1] == isolation_field:  # type: ignore[union-attr]
                existing.evidence["key_templates"] = evidence
                existing.message += f"; its keys ({path}) also skip the {label}# segment"
                return out
    events = sum(lacking.values())
    out.append(
        _make(
            "key_segment_missing",
            "high" if isolation_field else "medium",
            schema,
            path,
            f"{schema.name}.{path} key template {', '.join(sorted(lacking))} skips the {label}# segment that "
            f"{len(carriers)} of {siblings} sibling types carry ({events} events)",
            {"events": schema.count, **evidence},
            detail=label,
        )
    )
    return out
