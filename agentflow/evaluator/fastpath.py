"""The compiled fast path: decode events straight into schema-checked msgspec Structs.

Measured (benchmarks/README.md): building a Python dict per event with orjson and then computing
its shape in Python costs several microseconds per event. Once the shapes of a log are known,
msgspec can do both in C: the schemas learned so far are compiled into one tagged ``Struct`` class
per hot event type (``schema.HOT_SHARE``; ``tag_field`` = the type field; rare types are decoded by
structure: ``CompiledStructure``, ``RareType``), with ``forbid_unknown_fields``, exact field types and ``UNSET`` defaults for optional
fields; the classes of nested objects are shared by every type holding an object of that structure
(``_Shared``). Decoding a line then *is* the shape check. What is left
in Python is one generated loop per compiled schema (``CompiledSchema.run``): it decodes each line,
branches on the Struct class (most frequent type first) and turns the few things that can vary
(which optional fields are absent, which of several JSON types a field has) into an integer
*mask*; the (type, mask) pair identifies the event's shape exactly. Key values (for key
templates: the values of the fields seen holding a ``#``; ``Aggregator._add_fast`` checks that a
block has no ``#`` elsewhere) are only collected in the loop and counted once per block with C-level ``map`` chains
and a ``Counter``. One loop instead of a call per event and keys counted per block: measured
about 1.4x the speed of a generated function per type doing it all per event (benchmarks/README.md).

Any line the compiled schema rejects (a new type, a new or missing field, another JSON type,
malformed input) goes through the general path (``Aggregator.add_lines``), which records it
exactly; the schema is then recompiled so the next events of that shape are fast too. So results
are the same as without the fast path; only the speed differs (``tests`` compare both).

Used only for plain envelopes whose type is a top-level field (``type`` or a top-level
``--type-field``); EventBridge, CloudEvents and ``event_type`` logs use the general path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter, ne
from types import CodeType, FunctionType
from typing import Any, Union

import msgspec
import orjson
from msgspec.structs import astuple

from agentflow.evaluator import templates as key_counts
from agentflow.evaluator.keys import LABEL, key_template, template_of
from agentflow.evaluator.schema import AS_IS, EXAMPLES_PER_FIELD
from agentflow.evaluator.schema import _example as example_of

MAX_LABEL_KEYS = 256  # distinct (segments, even segments) counted per key field before spilling
FEW_KEYS = 8  # a field with fewer key values in a block: counted with other such fields, in one batch
MIXED_BATCH = 1 << 12  # key values of such fields (over blocks) counted at once ...
MIXED_CHARS = 1 << 20  # ... or fewer when they hold this many characters (GH Archive: texts of KBs)
# Their counts by (type and field, memo key) are kept in one Counter until it holds this many keys
# (or a flush): split while still in the caches, handed to each type's counts a few times a file.
MIXED_DISTINCT = 1 << 16
INLINE_TYPES = 8  # the most frequent types are tested inline in the generated loop; the others via a dict

UNSET = msgspec.UNSET
_EVENS = itemgetter(slice(None, None, 2))
_ODDS = itemgetter(slice(1, None, 2))
_is_label = LABEL.match
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
_PY = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list[msgspec.Raw],),  # elements undecoded: arrays are leaves; their '#' are counted raw
}
_JSON_OF = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null", list: "array"}


@dataclass
class Node:
    """A field of a compiled type: its JSON types, optionality, children (for objects) and mask bits."""

    key: str
    path: str
    types: list[str]  # JSON types seen, in first-seen order
    optional: bool = False
    children: list[Node] = field(default_factory=list)
    key_like: bool = False
    struct: Any = None
    codes: list[str] = field(default_factory=list)  # JSON types decodable here, when more than one
    absent_bit: int = -1
    code_shift: int = -1
    code_bits: int = 0


def _tree(shapes: list[Any], key_paths: set[str]) -> list[Node]:
    """The field tree of one type from its shapes (field order: first appearance)."""
    nodes: dict[str, Node] = {}
    roots: list[Node] = []
    for shape in shapes:
        for path, json_type in shape.fields:
            node = nodes.get(path)
            if node is None:
                parent_path, _, key = path.rpartition(".")
                node = nodes[path] = Node(key, path, [])
                (nodes[parent_path].children if parent_path else roots).append(node)
            if json_type not in node.types:
                node.types.append(json_type)
            node.key_like = path in key_paths and "string" in node.types
    for shape in shapes:
        present = {path for path, _ in shape.fields}
        objects = {path for path, json_type in shape.fields if json_type == "object"}
        for path, node in nodes.items():
            parent_path = path.rpartition(".")[0]
            if path not in present and (not parent_path or parent_path in objects):
                node.optional = True
    return roots


class CompiledSchema:
    """Struct classes, a decoder and the generated per-block loop for the types learned so far.

    ``run(lines, file_index, first_line, slow, note)`` decodes and counts a block of lines and
    returns how many it counted and how many ``#`` it found in the values it looked at (the caller
    compares them with the block's); a line the decoder rejects goes to ``slow([raw], file_index,
    line)`` (the general path), and the first ``first_events`` events of each (type, mask) since
    the last flush go to ``note(compiled_type, mask, file_index, line, raw)`` (sample lines and
    example values).
    """

    def __init__(
        self,
        shapes_by_type: dict[str, list[Any]],
        tag_field: str,
        first_events: int = 3,
        key_paths: dict[str, set[str]] | None = None,
        previous: CompiledSchema | None = None,
        rare_by_type: dict[str, list[Any]] | None = None,
    ):
        self.tag_field = tag_field
        self.types: dict[type, CompiledType] = {}  # the hot types, by their tagged Struct class
        self.rare: dict[str, RareType] = {}  # the rare ones, decoded by structure (RareType)
        self._collected: dict[str, frozenset[str]] = {}
        # Kept from one compilation to the next: the types reused from the previous one extend its
        # array_items list; nested Struct classes and mask functions are shared by structure.
        self.shared: _Shared = previous.shared if previous is not None else _Shared()
        # The undecoded elements (msgspec.Raw) of every array of a block: their '#' are part of the
        # block's census but never key values (arrays are leaves), so run() counts them as found.
        self.array_items: list[Any] = self.shared.array_items
        # A type whose shapes and key fields did not change since the previous compilation keeps its
        # Struct classes and generated code: with 2,000 types a recompilation rebuilt them all.
        reusable = {c.name: c for c in previous.types.values()} if previous is not None else {}
        for index, (name, shapes) in enumerate(sorted(shapes_by_type.items())):
            paths = (key_paths or {}).get(name, set())
            compiled = reusable.get(name)
            if compiled is None or not compiled.same_input(shapes, paths):
                compiled = CompiledType(name, shapes, tag_field, f"T{index}", paths, self.shared)
            compiled.shapes = shapes
            self.types[compiled.struct] = compiled
            self._collected[name] = frozenset(_key_like_paths(compiled.roots))
        reusable_rare = previous.rare if previous is not None else {}
        for name, shapes in sorted((rare_by_type or {}).items()):
            paths = (key_paths or {}).get(name, set())
            rare = reusable_rare.get(name)
            if rare is None or not rare.same_input(shapes, paths):
                rare = RareType(name, self.shared.structure(shapes, tag_field, paths), shapes)
            self.rare[name] = rare
            self._collected[name] = frozenset(rare.structure.key_like)
        self._hashed_tags = [compiled for compiled in self.types.values() if "#" in compiled.name]
        self._key_lists = [
            (c, path, values)
            for c in [*self.types.values(), *self.rare.values()]
            for path, values in c.key_values.items()
        ]
        self._few: list[str] = []  # key values of fields with few a block, counted later (_count_keys)
        self._few_owners: list[int] = []  # the owner (_Shared.owner) of each of _few
        self._mixed: Counter[tuple[int, int, str]] = (
            Counter()
        )  # (owner, segments, even segments): counted, not handed over
        self._few_chars = 0
        classes = list(self.types)
        self.decoder = (
            msgspec.json.Decoder(Union[tuple(classes)] if len(classes) > 1 else classes[0]) if classes else None
        )
        # The most frequent types first: the loop tests the Struct class against each in turn.
        by_frequency = sorted(self.types.values(), key=lambda c: -sum(shape.count for shape in c.shapes))
        self._loop = self._generate(by_frequency, first_events)

    def _count_keys(self) -> int:
        """Count the key values the block's events collected; returns the number of ``#`` in them.

        A key's template depends only on its number of segments and its even segments unless an
        odd segment could be a label (``keys.needs_full_build``), so keys are counted by the memo
        key ``(segments, "#".join(even segments))`` and turned into templates at flush time
        (``CompiledType.take_templates``), in C-level ``map`` chains (``CompiledType.count_keys``).
        The fields with fewer than ``FEW_KEYS`` values in the block (many types, a few events each)
        are counted together, over several blocks, by (type and field, memo key): one at a time,
        they cost 5 us a key with 2,000 types, and per block one count per type. The order keys are
        counted in does not change the templates (``templates``); ``count_pending`` before a flush."""
        hashes = 0
        few, owners = self._few, self._few_owners
        start = len(few)
        for compiled, path, values in self._key_lists:
            if not values:
                continue
            if len(values) < FEW_KEYS:
                few += values
                owners += [self.shared.owner(compiled, path)] * len(values)
            else:
                hashes += compiled.count_keys(path, values)
            values.clear()  # the generated code appends to this very list: clear, never replace
        if self.shared.rare_keys:  # the generated code appends to these very lists: clear, never replace
            few += self.shared.rare_keys
            owners += self.shared.rare_owners
            self.shared.rare_keys.clear()
            self.shared.rare_owners.clear()
        if len(few) > start:
            joined = "".join(few[start:])
            hashes += joined.count("#")
            self._few_chars += len(joined)
            if len(few) >= MIXED_BATCH or self._few_chars >= MIXED_CHARS:  # memory stays bounded
                self._count_few()
        return hashes

    def _count_few(self) -> None:
        if self._few:
            _count_mixed(self._few, self._few_owners, self._mixed, self.shared.owners)
            self._few.clear()
            self._few_owners.clear()
            self._few_chars = 0
        if len(self._mixed) >= MIXED_DISTINCT:
            _distribute(self._mixed, self.shared.owners)

    def count_pending(self) -> None:
        """Count the key values ``_count_keys`` left for a later batch (before ``take_templates``)."""
        self._count_few()
        _distribute(self._mixed, self.shared.owners)

    def key_paths(self, name: str) -> frozenset[str]:
        """The fields of type ``name`` whose ``#`` values the loop collects (none for unknown types)."""
        return self._collected.get(name, frozenset())

    def run(self, lines: list[bytes], file_index: int, first_line: int, slow: Any, note: Any) -> tuple[int, int]:
        """Decode and count ``lines`` (see the class docstring): ``(events counted, '#' found)``."""
        before = [sum(compiled.counts.values()) for compiled in self._hashed_tags]
        counted = self._loop(lines, file_index, first_line, slow, note)
        found = self._count_keys()
        if self.array_items:
            items = b"".join(self.array_items)
            found += len(items) - len(items.replace(b"#", b""))  # 4x faster than count(b"#")
            self.array_items.clear()  # the generated loop extends this very list: clear, never replace
        for compiled, earlier in zip(self._hashed_tags, before, strict=False):  # a type name with a '#' is a value too
            events = sum(compiled.counts.values()) - earlier
            if events:
                compiled.count_template(self.tag_field, key_template(compiled.name), events)
                found += events * compiled.name.count("#")
        return counted, found

    def _generate(self, order: list[CompiledType], first_events: int) -> Any:
        namespace = self.shared.namespace()
        namespace.update(DECODE_ERRORS=DECODE_ERRORS)
        source = [
            "def run(lines, file_index, first_line, slow, note):",
            "    fell = 0",
        ]
        if self.rare:
            # The lines of rare types wait in their structure's list (CompiledStructure.pending) and
            # are counted per structure after the loop; the lines left to the general path are handed over
            # after that, in order, so that it sees them as it would without the fast path.
            source += ["    fallen = []", "    fall = fallen.append"]
            fall = ["fall(line - first_line)", "continue"]
            rare = self._rare_lines(namespace)
        else:
            fall = ["fell += 1", "slow([raw], file_index, line)", "continue"]
            rare = []
        source.append("    for line, raw in enumerate(lines, first_line):")
        if not order:  # rare types only: every line is looked up by its type name
            source += ["        " + text for text in rare + fall]
        else:
            namespace["decode"] = self.decoder.decode
            source += [
                "        try:",
                "            o = decode(raw)",
                "        except DECODE_ERRORS:",
                *["            " + text for text in rare + fall],
                "        t = type(o)",
            ]
            self._hot_lines(order, first_events, namespace, source)
        if self.rare:
            structures = list({id(r.structure): r.structure for r in self.rare.values()}.values())
            for structure in structures:  # the structure's count function holds these very objects
                structure.pending.clear()
                structure.types.clear()
            for rare_type in self.rare.values():
                rare_type.structure.types[rare_type.name] = (rare_type.counts, rare_type.key_appenders, rare_type)
            namespace["counts"] = tuple(structure.count_function(first_events) for structure in structures)
            source += [
                "    for count in counts:",
                "        count(lines, first_line, file_index, note, fall)",
                "    if fallen:",
                "        fallen.sort()",
                "        for index in fallen:",
                "            slow([lines[index]], file_index, first_line + index)",
                "    fell = len(fallen)",
            ]
        source.append("    return len(lines) - fell")
        exec("\n".join(source), namespace)  # noqa: S102 - source built from our own field trees only
        return namespace["run"]

    def _hot_lines(
        self, order: list[CompiledType], first_events: int, namespace: dict[str, Any], source: list[str]
    ) -> None:
        """The loop's statements after ``t = type(o)``: branch on the hot type's class and count."""
        inline, rest = order[:INLINE_TYPES], order[INLINE_TYPES:]
        if len(rest) == 1:  # one left: as cheap inline as through a call
            inline, rest = order, []
        for index, compiled in enumerate(inline):
            suffix = f"_{index}"
            namespace[f"T{suffix}"] = compiled.struct
            namespace[f"ct{suffix}"] = compiled
            namespace[f"n{suffix}"] = compiled.counts
            if index == 0:
                source.append(f"        if t is T{suffix}:")
            elif index < len(inline) - 1 or rest:
                source.append(f"        elif t is T{suffix}:")
            else:
                source.append("        else:")  # the decoder returns nothing but these classes
            body = compiled.mask_lines(namespace, suffix) + [
                (0, "try:"),
                (1, f"c = n{suffix}[m] + 1"),
                (0, "except KeyError:"),
                (1, "c = 1"),
                (0, f"n{suffix}[m] = c"),
                (0, f"if c <= {first_events}: note(ct{suffix}, m, file_index, line, raw)"),
            ]
            source += ["    " * (level + 3) + text for level, text in [(0, "m = 0"), *body]]
        if rest:
            # The less frequent types: one dictionary lookup and a call to the mask function of
            # the type's structure instead of a chain of `is` tests as long as the number of types.
            namespace["rest"] = {
                compiled.struct: (compiled.mask_function(), compiled.key_appenders, compiled) for compiled in rest
            }
            source += [
                "        else:",
                "            mask, k, ct = rest[t]",
                "            m = mask(o, k)",
                "            n = ct.counts",
                "            try:",
                "                c = n[m] + 1",
                "            except KeyError:",
                "                c = 1",
                "            n[m] = c",
                f"            if c <= {first_events}: note(ct, m, file_index, line, raw)",
            ]

    def _rare_lines(self, namespace: dict[str, Any]) -> list[str]:
        """Statements (unindented) putting a line of a rare type in its structure's ``pending``
        list (``continue``); a line whose type is not a rare one falls through.

        The type name is read from the bytes: after the first ``"type":"`` (or ``"type": "``), up to
        the next quote; names that need an escape in JSON are never rare types
        (``Aggregator._rare_eligible``). The bytes only choose the structure: its count function
        counts the line under the decoded type field, which must be a rare type of that structure
        (``CompiledStructure.count_function``)."""
        tag = orjson.dumps(self.tag_field)
        namespace.update(
            rare_get={orjson.dumps(name)[1:-1]: r.structure.pending.append for name, r in self.rare.items()}.get,
            P1=tag + b':"',
            P2=tag + b': "',
            Q=b'"',
        )
        return [
            "wait = rare_get(raw.partition(P1)[2].partition(Q)[0])",
            "if wait is None:",
            "    wait = rare_get(raw.partition(P2)[2].partition(Q)[0])",
            "if wait is not None:",
            "    wait(line)",
            "    continue",
        ]


class CompiledType:
    """One event type: its Struct class, mask layout and the counts the generated loop keeps."""

    COLLECT = "k[{index}]({value})"  # how shared mask code collects a key value (``k``: the type's appenders)

    def __init__(
        self, name: str, shapes: list[Any], tag_field: str, class_name: str, key_paths: set[str], shared: _Shared
    ):
        self.name = name
        self.shared = shared
        self.shapes = shapes
        self.roots = [n for n in _tree(shapes, key_paths) if n.path != tag_field]
        self.tag_index = next((i for i, (p, _) in enumerate(shapes[0].fields) if p == tag_field), 0)
        self.tag_field = tag_field
        self.bits = 0
        self.struct = self._struct(self.roots, class_name, tag=name)
        self.counts: dict[int, int] = {}  # mask -> events since the last flush
        self.samples: dict[int, tuple[list[Any], dict[str, list[Any]]]] = {}  # mask -> (lines, examples)
        self.templates: dict[str, dict[str, int]] = {}  # path -> template -> events (spilled)
        self.label_counts: dict[str, dict[tuple[int, str], int]] = {}  # path -> memo key -> events
        self.skeleton_counts: dict[str, dict[str, int]] = {}  # path -> skeleton (PLATFORM#TENANT#) -> events
        self.fields_of: dict[int, tuple[tuple[str, str], ...]] = {}
        self.input = (_shape_fields(shapes), frozenset(key_paths))
        # path -> the key values of this block, not counted yet (collected by the generated code)
        key_like = _key_like_paths(self.roots)
        self.key_values: dict[str, list[str]] = {path: [] for path in key_like}
        self.key_appenders = tuple(values.append for values in self.key_values.values())
        self._key_index = {path: index for index, path in enumerate(key_like)}
        self.mask: Any = None  # the generated mask function (mask_function), for types not inlined

    def same_input(self, shapes: list[Any], key_paths: set[str]) -> bool:
        """True when compiling ``shapes`` and ``key_paths`` would give this very type again."""
        return self.input == (_shape_fields(shapes), frozenset(key_paths))

    def mask_function(self) -> Any:
        """``mask(o, k)``: the mask of a decoded Struct of this type's structure, its key values
        collected by the appenders ``k`` (``key_appenders``); kept across compilations. Types of one
        structure (the same fields and nested classes, whatever their names) share one function."""
        if self.mask is None:
            namespace = self.shared.namespace()
            namespace["astuple"] = astuple
            body = self.mask_lines(namespace, "", shared=True)
            # The root's fields by position (astuple, in C): the root classes differ between the
            # types sharing the function, and reading an attribute of one of 2,000 classes at one
            # place in the code cost 0.9 us a line (the interpreter's attribute caches keep missing).
            by_position = any(" = o[" in text for _, text in body)
            start = ["def mask(o, k):", "    m = 0"] + (["    o = astuple(o)"] if by_position else [])
            source = "\n".join([*start, *["    " * (level + 1) + text for level, text in body], "    return m"])
            self.mask = self.shared.function(source, namespace, "mask")
        return self.mask

    # -- struct classes -------------------------------------------------------------------------

    def _struct(self, nodes: list[Node], class_name: str, tag: str | None = None) -> Any:
        fields, rename = [], {}
        for index, node in enumerate(nodes):
            attr = f"f{index}"
            rename[attr] = node.key
            options: list[Any] = []
            codes: list[str] = []
            for json_type in node.types:
                if json_type == "object":
                    node.struct = self._struct(node.children, f"{class_name}_{index}")
                    options.append(node.struct)
                    codes.append("object")
                else:
                    options.extend(_PY[json_type])
                    codes.extend(["integer", "number"] if json_type == "number" else [json_type])
            codes = list(dict.fromkeys(codes))
            if node.optional:
                node.absent_bit = self._take(1)
                options.append(msgspec.UnsetType)
            if len(codes) > 1:
                node.codes = codes
                node.code_bits = max(1, (len(codes) - 1).bit_length())
                node.code_shift = self._take(node.code_bits)
            fields.append((attr, tuple(dict.fromkeys(options)), node.optional))
        if tag is None:  # a nested object: one class for every object of this structure, in any type
            known = self.shared.structs.get((tuple(fields), tuple(rename.values())))
            if known is not None:
                return known
        specs = [
            (attr, Union[options] if len(options) > 1 else options[0], *((UNSET,) if optional else ()))
            for attr, options, optional in fields
        ]
        kwargs: dict[str, Any] = {"rename": rename, "forbid_unknown_fields": True, "kw_only": True, "gc": False}
        if tag is not None:
            kwargs.update(tag_field=self.tag_field, tag=tag)
        struct = msgspec.defstruct(class_name, specs, **kwargs)
        if tag is None:
            self.shared.structs[(tuple(fields), tuple(rename.values()))] = struct
        return struct

    def _take(self, bits: int) -> int:
        shift = self.bits
        self.bits += bits
        return shift

    # -- the generated mask code ------------------------------------------------------------------

    def mask_lines(
        self, namespace: dict[str, Any], suffix: str, shared: bool = False, positional: bool | None = None
    ) -> list[tuple[int, str]]:
        """Statements (indent level, text) that compute this type's mask ``m`` from its Struct ``o``
        and collect its key values; the names they use are added to ``namespace``. ``shared``: code
        for ``mask_function`` (the root read by position, the key values collected by ``k[index]``)."""
        body: list[tuple[int, str]] = []
        positional = shared if positional is None else positional
        for index, node in enumerate(self.roots):
            body += self._node_lines(node, index, "o", 1, namespace, suffix, shared, positional)
        return body

    def _node_lines(
        self,
        node: Node,
        index: int,
        var: str,
        depth: int,
        ns: dict[str, Any],
        suffix: str,
        shared: bool,
        positional: bool = False,
    ) -> list[tuple[int, str]]:
        """Statements (indent level relative to the caller, text) adding this field's bits to ``m``."""
        value = f"v{depth}"
        inner: list[tuple[int, str]] = []
        if node.codes:
            table = f"c{suffix}_{node.code_shift}"
            ns[table] = {self._python_type(node, code): i << node.code_shift for i, code in enumerate(node.codes)}
            inner.append((0, f"m |= {table}[type({value})]"))
        if node.key_like:
            # Only collected here: CompiledSchema._count_keys counts a block's keys at once, in
            # C-level loops.
            key_index = self._key_index[node.path]
            if shared:
                collect = self.COLLECT.format(value=value, index=key_index)
            else:
                name = f"ka{suffix}_{key_index}"
                ns[name] = self.key_appenders[key_index]
                collect = f"{name}({value})"
            # The type test only when the field has several JSON types: otherwise the Struct
            # decoded it as a string (or it is absent, handled below).
            test = f"type({value}) is str and '#' in {value}" if node.codes else f"'#' in {value}"
            inner += [(0, f"if {test}:"), (1, collect)]
        if "array" in node.types:
            if node.codes:
                inner += [(0, f"if type({value}) is list:"), (1, f"array_items({value})")]
            else:
                inner.append((0, f"array_items({value})"))
        if node.struct is not None:
            struct_name = f"s{suffix}_{len(ns)}"
            ns[struct_name] = node.struct
            children: list[tuple[int, str]] = []
            for child_index, child in enumerate(node.children):
                children += self._node_lines(child, child_index, value, depth + 1, ns, suffix, shared, positional)
            if children and node.codes:  # an object here, or another JSON type
                inner.append((0, f"if type({value}) is {struct_name}:"))
                inner += [(level + 1, text) for level, text in children]
            else:
                inner += children
        if not node.optional and not inner:
            return []
        # A shared mask function reads the root by position (mask_function); nested classes are the
        # same in every type it serves.
        lines = [(0, f"{value} = {var}[{index}]" if positional and depth == 1 else f"{value} = {var}.f{index}")]
        if node.optional:
            lines += [(0, f"if {value} is UNSET:"), (1, f"m |= {1 << node.absent_bit}")]
            if inner:
                lines.append((0, "else:"))
                lines += [(level + 1, text) for level, text in inner]
        else:
            lines += inner
        return lines

    @staticmethod
    def _python_type(node: Node, code: str) -> type:
        if code == "object":
            return node.struct
        return {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None), "array": list}[
            code
        ]

    # -- key templates ----------------------------------------------------------------------------

    def count_keys(self, path: str, values: list[str]) -> int:
        """Count one field's key values of a block (``CompiledSchema._count_keys``); returns their ``#``.

        Per block, in C-level ``map`` chains: split every key, join its even segments, compare the
        number of ASCII upper-case letters in all keys with that in their even segments (equal: no
        odd segment can start a label) and count with a ``Counter`` (by the joined even segments
        alone when all keys have as many segments, the usual case). About half the cost of doing the
        same per event in Python. The keys of a block with an upper-case letter at an odd position
        are counted by skeleton, the key with every segment that is not a label emptied:
        PLATFORM#TENANT# (the template depends on nothing else: keys._build tells labels from values
        by the same test). Free text ("Fix #12 (#13)") then shares a few skeletons ("##") instead of
        one per value: 0.32 -> 0.56 M events/s on a log whose keys all start with a literal
        PLATFORM# prefix, against building each key's template.
        """
        parts = list(map(str.split, values, repeat("#")))
        evens = list(map("#".join, map(_EVENS, parts)))
        hashes = 0
        if _ascii_upper("".join(values)) != _ascii_upper("".join(evens)):
            for skeleton, n in Counter(map(_skeleton, parts)).items():
                self._count_skeleton(path, skeleton, n)
                hashes += skeleton.count("#") * n  # a skeleton keeps every '#'
            return hashes
        sizes = set(map(len, parts))
        if len(sizes) == 1:
            size = sizes.pop()
            for even, n in Counter(evens).items():  # in order of first appearance
                self._count_memo(path, (size, even), n)
            return (size - 1) * len(parts)  # segments - 1 '#' in each key
        for memo_key, n in Counter(zip(map(len, parts), evens, strict=False)).items():
            self._count_memo(path, memo_key, n)
            hashes += (memo_key[0] - 1) * n
        return hashes

    def _count_memo(self, path: str, memo_key: tuple[int, str], n: int) -> None:
        """Count ``n`` keys by memo key; after MAX_LABEL_KEYS distinct ones, by template (spill)."""
        self._count_capped(self.label_counts, path, memo_key, n, _memo_template)

    def _count_skeleton(self, path: str, skeleton: str, n: int) -> None:
        """Count ``n`` keys by skeleton; after MAX_LABEL_KEYS distinct ones, by template (spill)."""
        self._count_capped(self.skeleton_counts, path, skeleton, n, key_template)

    def _count_capped(
        self, table: dict[str, dict[Any, int]], path: str, key: Any, n: int, template_of: Callable[[Any], str]
    ) -> None:
        counts = table.setdefault(path, {})
        known = counts.get(key)
        if known is not None:
            counts[key] = known + n
        elif len(counts) < MAX_LABEL_KEYS:
            counts[key] = n
        else:
            self.count_template(path, template_of(key), n)

    def count_template(self, path: str, template: str, n: int = 1) -> None:
        """Count ``n`` events of ``template`` directly (spilled memo keys and skeletons, type names)."""
        key_counts.add(self.templates.setdefault(path, {}), template, n)

    def take_templates(self) -> dict[str, dict[str, int]]:
        """Template counts since the last call (memo keys and skeletons turned into templates), then
        reset."""
        out = {path: dict(counts) for path, counts in self.templates.items()}
        for path, counts in self.label_counts.items():
            target = out.setdefault(path, {})
            for memo_key, n in counts.items():
                key_counts.add(target, _memo_template(memo_key), n)
            counts.clear()
        for path, skeletons in self.skeleton_counts.items():
            target = out.setdefault(path, {})
            for skeleton, n in skeletons.items():
                key_counts.add(target, key_template(skeleton), n)
            skeletons.clear()
        self.templates.clear()
        return out

    # -- back to shapes ---------------------------------------------------------------------------

    def fields_for(self, mask: int) -> tuple[tuple[str, str], ...]:
        """The (path, JSON type) list of the shape a mask stands for (order as in the event)."""
        known = self.fields_of.get(mask)
        if known is None:
            out: list[tuple[str, str]] = []
            self._walk(self.roots, mask, out)
            out.insert(min(self.tag_index, len(out)), (self.tag_field, "string"))
            known = self.fields_of[mask] = tuple(out)
        return known

    def _walk(self, nodes: list[Node], mask: int, out: list[tuple[str, str]]) -> None:
        for node in nodes:
            if node.optional and mask >> node.absent_bit & 1:
                continue
            json_type = node.codes[mask >> node.code_shift & (1 << node.code_bits) - 1] if node.codes else node.types[0]
            out.append((node.path, json_type))
            if json_type == "object":
                self._walk(node.children, mask, out)


class CompiledStructure(CompiledType):
    """What rare types alike but for their name share (``RareType``): one Struct class whose type
    field is a plain string field (no tag), its decoder, and one count function that counts each
    line under its decoded type field (one of the structure's types). Types of one structure are
    compiled once: with 2,000 types of 200 structures, no class, decoder or function per type.

    Key values go to one list for all rare types, with their owner (type and field) in a parallel
    list (``k``: the type's owners), counted in the batch of ``CompiledSchema._count_keys``: with
    a list per type, the 2,000 lists of a block cost more than counting their few keys."""

    COLLECT = "kv({value}); ko(k[{index}])"

    def __init__(self, shapes: list[Any], tag_field: str, class_name: str, key_paths: set[str], shared: _Shared):
        self.name = ""
        self.shared = shared
        self.shapes = shapes
        self.roots = _tree(shapes, key_paths)  # the type field included, as a plain string field
        self.tag_pos = next(i for i, node in enumerate(self.roots) if node.path == tag_field)
        self.tag_field = tag_field
        self.bits = 0
        self.struct = self._struct(self.roots, class_name)
        self.decode = msgspec.json.Decoder(self.struct).decode
        self.fields_of: dict[int, tuple[tuple[str, str], ...]] = {}
        self.input = (_shape_fields(shapes), frozenset(key_paths))
        self.key_like = _key_like_paths(self.roots)
        self._key_index = {path: index for index, path in enumerate(self.key_like)}
        # The line numbers of the current block waiting for this structure's count function, in
        # line order, and the types of the current compilation by name: (counts, key owners,
        # RareType). The generated count function holds these very objects (cleared, never replaced).
        self.pending: list[int] = []
        self.types: dict[str, tuple[dict[int, int], tuple[Any, ...], RareType]] = {}
        self.count: Any = None
        self._masks: dict[tuple[tuple[str, str], ...], int | None] = {}
        self._examples: Any = None  # examples_function

    def examples_function(self) -> Any:
        """``examples(o, by_path)``: ``_struct_examples(self.roots, o, by_path)`` as generated code,
        the tree unrolled (no recursion, no zip over nodes; paths and classes are constants of its
        namespace, so structures of one tree shape share the compiled source). A rare type's first
        events take their examples from the decoded Struct: with 2,000 types, 4,000 events of 17 fields."""
        if self._examples is None:
            namespace: dict[str, Any] = {"UNSET": UNSET, "astuple": astuple, "example_of": example_of, "AS_IS": AS_IS}
            source = ["def examples(o, ex):"]
            _example_lines(self.roots, "o", 1, "    ", namespace, source)
            self._examples = FunctionType(self.shared.code("\n".join(source)), namespace)
        return self._examples

    def count_function(self, first_events: int) -> Any:
        """``count(lines, first_line, file_index, note, fall)``: decode and count the lines waiting in
        this structure's ``pending`` list (line numbers, in order), each under its decoded type
        field; a line it cannot count (it does not decode, or its decoded type field is not a rare
        type of this structure (``types``, refilled at each compilation): the bytes the line was
        looked up by may belong to a nested object or a duplicate key) goes to ``fall(index in
        lines)``. One function, decoder and Struct class for all the types of one structure: the
        attribute reads stay monomorphic. (A list per type, walked type by type, cost 0.15 us more a
        line with 2,000 types: 2,000 lists of two lines a block.)"""
        if self.count is None:
            namespace = self.shared.namespace()
            namespace.update(DECODE_ERRORS=DECODE_ERRORS, decode=self.decode, pending=self.pending)
            namespace.update(types_get=self.types.get)
            namespace.update(kv=self.shared.rare_keys.append, ko=self.shared.rare_owners.append)
            body = self.mask_lines(namespace, "", shared=True, positional=False)
            inner = [
                "raw = lines[line - first_line]",
                "try:",
                "    o = decode(raw)",
                "except DECODE_ERRORS:",
                "    fall(line - first_line)",
                "    continue",
                f"e = types_get(o.f{self.tag_pos})",
                "if e is None:",
                "    fall(line - first_line)",
                "    continue",
                "n, k, ct = e",
                "m = 0",
                *["    " * level + text for level, text in body],
                "try:",
                "    c = n[m] + 1",
                "except KeyError:",
                "    c = 1",
                "n[m] = c",
                f"if c <= {first_events}: note_rare(ct, m, file_index, line, o)",
            ]
            namespace["note_rare"] = _note_rare
            source = [
                "def count(lines, first_line, file_index, note, fall):",
                "    if pending:",
                "        for line in pending:",
                *["            " + text for text in inner],
                "        pending.clear()",
            ]
            self.count = FunctionType(self.shared.code("\n".join(source)), namespace)
        return self.count

    def fields_for(self, mask: int) -> tuple[tuple[str, str], ...]:
        """As ``CompiledType.fields_for``; the type field is one of the nodes here."""
        known = self.fields_of.get(mask)
        if known is None:
            out: list[tuple[str, str]] = []
            self._walk(self.roots, mask, out)
            known = self.fields_of[mask] = tuple(out)
        return known

    def mask_of(self, fields: tuple[tuple[str, str], ...]) -> int | None:
        """The mask of the shape whose nodes are ``fields``; None when this structure cannot hold it
        (kept per fields: the types of one structure have the same shapes)."""
        if fields not in self._masks:
            self._masks[fields] = self._mask_of(fields)
        return self._masks[fields]

    def _mask_of(self, fields: tuple[tuple[str, str], ...]) -> int | None:
        types = dict(fields)
        mask = 0
        pending = list(self.roots)
        while pending:
            node = pending.pop()
            json_type = types.get(node.path)
            if json_type is None:
                if not node.optional:
                    return None
                mask |= 1 << node.absent_bit
                continue
            if node.codes:
                if json_type not in node.codes:
                    return None
                mask |= node.codes.index(json_type) << node.code_shift
            elif json_type != node.types[0]:
                return None
            if json_type == "object":
                pending += node.children
        return mask if set(self.fields_for(mask)) == set(fields) else None


class RareType(CompiledType):
    """A rare event type (``schema.HOT_SHARE``) decoded by its structure (``CompiledStructure``): of
    its own only the counts, sample lines and key values the generated loop keeps.

    ``counts`` are the events of each mask so far, the general path's events of the same shape
    included (``base``: the counts at the last flush), so that exactly a shape's first
    ``first_events`` events are noted, as on the general path; ``general``: mask -> (key, shape) of
    the general path's shape the counts are added to at a flush (``Aggregator.flush``)."""

    def __init__(self, name: str, structure: CompiledStructure, shapes: list[Any]):
        self.name = name
        self.structure = structure
        self.shapes = shapes
        self.roots = structure.roots
        self.input = structure.input
        self.counts: dict[int, int] = {}
        self.base: dict[int, int] = {}
        self.general: dict[int, tuple[Any, Any]] = {}
        self.samples: dict[int, tuple[list[Any], dict[str, list[Any]]]] = {}
        self.templates: dict[str, dict[str, int]] = {}
        self.label_counts: dict[str, dict[tuple[int, str], int]] = {}
        self.skeleton_counts: dict[str, dict[str, int]] = {}
        self.key_values: dict[str, list[str]] = {}  # collected in CompiledStructure's shared list
        # the owners of its keys (_Shared.owner): the count function collects them with the values
        self.key_appenders = tuple(structure.shared.owner(self, path) for path in structure.key_like)

    def fields_for(self, mask: int) -> tuple[tuple[str, str], ...]:
        return self.structure.fields_for(mask)

    def pending_keys(self) -> bool:
        """Whether key values were counted since the last ``take_templates``."""
        return bool(self.templates) or any(self.label_counts.values()) or any(self.skeleton_counts.values())

    def seed(self, shapes: list[tuple[Any, Any]]) -> None:
        """Count the events the general path took of each of the type's shapes ``(key, shape)``, in
        table order (the first shape of a mask receives that mask's counts at a flush)."""
        for key, shape in shapes:
            mask = self.structure.mask_of(shape.fields)
            if mask is not None:
                self.counts[mask] = self.counts.get(mask, 0) + shape.count
                self.general.setdefault(mask, (key, shape))
        self.base.update(self.counts)


class _Shared:
    """What successive compilations of one log share: the undecoded array elements of a block, and
    by structure the Struct classes of nested objects and the mask functions of the types.

    Measured (benchmarks/README.md): with a class of its own for every nested object of every type,
    2,000 types made 8,000 classes, 1.3 ms of compilation a type and a decoder several times slower
    per line than for 5 types (its tables no longer fit in the caches); the 2,000 types of the
    benchmark have about 200 distinct payloads and one actor and meta object. Each type keeps a root
    class of its own (it carries the type's tag)."""

    def __init__(self) -> None:
        self.array_items: list[Any] = []
        self.rare_keys: list[str] = []  # the key values of rare types (CompiledStructure) ...
        self.rare_owners: list[int] = []  # ... and their owners (``owner``)
        # (type, field) of the key values counted together (CompiledSchema._count_few), by number:
        # an int hashes and compares in a few instructions, a (type, field) tuple did not.
        self.owners: list[tuple[Any, str]] = []
        self._owner_ids: dict[tuple[int, str], int] = {}
        self.structs: dict[tuple[Any, ...], Any] = {}
        self._functions: dict[tuple[str, tuple[Any, ...]], Any] = {}
        self._structures: dict[tuple[Any, ...], CompiledStructure] = {}
        self._codes: dict[str, CodeType] = {}

    def owner(self, compiled: Any, path: str) -> int:
        """The number of ``(compiled, path)`` in ``owners`` (added when new; kept for this log's
        compilations: a type reused by a recompilation keeps its numbers)."""
        key = (id(compiled), path)
        known = self._owner_ids.get(key)
        if known is None or self.owners[known][0] is not compiled:
            known = self._owner_ids[key] = len(self.owners)
            self.owners.append((compiled, path))
        return known

    def code(self, source: str) -> CodeType:
        """The code of the one function ``source`` defines, compiled once per distinct source (the
        structures of one tree shape have the same count function: only their namespaces differ)
        and copied for each caller: a code object of its own keeps its own specialisations (one
        code object for many classes keeps missing, ``function``)."""
        known = self._codes.get(source)
        if known is None:
            module = compile(source, "<evaluator fast path>", "exec")
            known = self._codes[source] = next(c for c in module.co_consts if isinstance(c, CodeType))
        return known.replace()

    def structure(self, shapes: list[Any], tag_field: str, key_paths: set[str]) -> CompiledStructure:
        """The compiled structure of rare types with these shapes and key fields (one per distinct input)."""
        key = (_shape_fields(shapes), frozenset(key_paths), tag_field)
        known = self._structures.get(key)
        if known is None:
            known = self._structures[key] = CompiledStructure(
                shapes, tag_field, f"R{len(self._structures)}", key_paths, self
            )
        return known

    def namespace(self) -> dict[str, Any]:
        """The names every generated function uses."""
        return {"UNSET": UNSET, "array_items": self.array_items.extend}

    def function(self, source: str, namespace: dict[str, Any], name: str) -> Any:
        """The function ``name`` defined by ``source`` in ``namespace``; one per distinct source and
        namespace (the Struct classes and type tables it names), shared by the types that ask: one
        function per type ran 4x slower with 2,000 types."""
        names = tuple(
            (key, tuple(value.items()) if type(value) is dict else value)
            for key, value in namespace.items()
            if key.startswith(("s_", "c_"))
        )
        known = self._functions.get((source, names))
        if known is None:
            # Compiled anew, not shared with another namespace: the interpreter specialises the
            # code for the classes it meets, and one code object for many classes keeps missing.
            exec(source, namespace)  # noqa: S102 - source built from our own field trees only
            known = self._functions[(source, names)] = namespace[name]
        return known


def _note_rare(rare: RareType, mask: int, file_index: int, line: int, obj: Any) -> None:
    """``schema._note`` for a rare type: the example values are read from the decoded Struct
    (``_struct_examples``) rather than parsed again from the line."""
    found = rare.samples.get(mask)
    if found is None:
        found = rare.samples[mask] = ([], {})
    found[0].append((file_index, line))
    rare.structure.examples_function()(obj, found[1])


def _struct_examples(nodes: list[Node], obj: Any, examples: dict[str, list[Any]]) -> None:
    """``schema._examples_into`` over a decoded Struct (its fields are ``nodes``, in order): the
    same example of every present value that is not an object (an array's is its length)."""
    for node, value in zip(nodes, astuple(obj), strict=True):
        if value is UNSET:
            continue
        kind = type(value)
        if kind is node.struct:  # a nested object (node.struct is None for a leaf)
            _struct_examples(node.children, value, examples)
            continue
        found = examples.get(node.path)
        if found is None:
            found = examples[node.path] = []
        elif len(found) >= EXAMPLES_PER_FIELD:
            continue
        example = value if (kind is str and len(value) <= 80) or kind in AS_IS else example_of(value)
        if example not in found:
            found.append(example)


_AS_IS_JSON = frozenset(["integer", "number", "boolean", "null"])  # schema.AS_IS: the example is the value


def _example_lines(
    nodes: list[Node], var: str, depth: int, indent: str, namespace: dict[str, Any], source: list[str]
) -> None:
    """The statements of ``CompiledStructure.examples_function`` for the fields ``nodes`` of the
    Struct ``var`` (what ``_struct_examples`` does for each, inline)."""
    values, value = f"t{depth}", f"v{depth}"
    source.append(f"{indent}{values} = astuple({var})")
    for index, node in enumerate(nodes):
        source.append(f"{indent}{value} = {values}[{index}]")
        inner = indent
        if node.optional:
            source.append(f"{indent}if {value} is not UNSET:")
            inner = indent + "    "
        if node.struct is None:
            _example_leaf(node, value, inner, namespace, source)
            continue
        struct = f"S{len(namespace)}"
        namespace[struct] = node.struct
        if len(node.types) > 1:  # an object here, or another JSON type
            source.append(f"{inner}if type({value}) is {struct}:")
            _example_lines(node.children, value, depth + 1, inner + "    ", namespace, source)
            source.append(f"{inner}else:")
            _example_leaf(node, value, inner + "    ", namespace, source)
        else:
            _example_lines(node.children, value, depth + 1, inner, namespace, source)


def _example_leaf(node: Node, value: str, indent: str, namespace: dict[str, Any], source: list[str]) -> None:
    path = f"P{len(namespace)}"
    namespace[path] = node.path
    kinds = {t for t in node.types if t != "object"}
    if kinds <= _AS_IS_JSON:
        example = value
    elif kinds == {"string"}:
        example = f"{value} if len({value}) <= 80 else example_of({value})"
    elif kinds == {"array"}:
        example = f"example_of({value})"
    else:
        example = f"{value} if (type({value}) is str and len({value}) <= 80) or type({value}) in AS_IS else example_of({value})"
    source += [
        f"{indent}f = ex.get({path})",
        f"{indent}if f is None:",
        f"{indent}    ex[{path}] = [{example}]",
        f"{indent}elif len(f) < {EXAMPLES_PER_FIELD}:",
        f"{indent}    e = {example}",
        f"{indent}    if e not in f:",
        f"{indent}        f.append(e)",
    ]


def _skeleton(segments: list[str]) -> str:
    """A key with every segment that is not a label emptied (``CompiledType.count_keys``)."""
    return "#".join([s if "A" <= s[:1] <= "Z" and _is_label(s) else "" for s in segments])


def _count_mixed(
    values: list[str], owners: list[int], plain: Counter[tuple[int, int, str]], table: list[tuple[Any, str]]
) -> None:
    """``CompiledType.count_keys`` for the key values of many fields at once (``table[owners[i]]``:
    the type and field of ``values[i]``). A key with an upper-case letter at an odd position is
    counted by skeleton, the others by memo key, into ``plain`` (``_distribute`` hands them over)."""
    parts = list(map(str.split, values, repeat("#")))
    evens = list(map("#".join, map(_EVENS, parts)))
    sizes = list(map(len, parts))
    if _ascii_upper("".join(values)) == _ascii_upper("".join(evens)):
        plain.update(zip(owners, sizes, evens, strict=False))
    else:
        odds = list(map("#".join, map(_ODDS, parts)))
        labelled = list(map(ne, odds, map(str.lower, odds)))  # an odd segment may be a label
        keys = zip(owners, sizes, evens, strict=False)
        plain.update(key for key, skip in zip(keys, labelled, strict=False) if not skip)
        marked = zip(owners, parts, labelled, strict=False)
        for (owner, skeleton), n in Counter((o, _skeleton(p)) for o, p, skip in marked if skip).items():
            compiled, path = table[owner]
            compiled._count_skeleton(path, skeleton, n)


def _distribute(plain: Counter[tuple[int, int, str]], table: list[tuple[Any, str]]) -> None:
    """Hand the counts of ``_count_mixed`` to each type's memo counts, then forget them."""
    for (owner, size, even), n in plain.items():
        compiled, path = table[owner]
        compiled._count_memo(path, (size, even), n)
    plain.clear()


def _shape_fields(shapes: list[Any]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """What a type is compiled from: its shapes' fields, in order."""
    return tuple(shape.fields for shape in shapes)


def _key_like_paths(nodes: list[Node]) -> list[str]:
    """The paths of the fields (at any depth) whose ``#`` values the generated loop collects."""
    out: list[str] = []
    for node in nodes:
        if node.key_like:
            out.append(node.path)
        out += _key_like_paths(node.children)
    return out


_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))


def _ascii_upper(text: str) -> int:
    """How many of ``text``'s characters are ASCII upper-case letters (a label starts with one)."""
    data = text.encode("utf-8", "surrogatepass")  # bytes below 0x80 are ASCII characters only
    return len(data) - len(data.translate(None, _ASCII_UPPER))


def _memo_template(memo_key: tuple[int, str]) -> str:
    """The template of the keys counted under ``(segments, "#".join(even segments))`` (memoised:
    asked at every flush of every type, and the types of a log share a few)."""
    template = _MEMO_TEMPLATES.get(memo_key)
    if template is None:
        count, evens = memo_key
        template = template_of((count, *evens.split("#")))
        if len(_MEMO_TEMPLATES) >= 4096:
            _MEMO_TEMPLATES.clear()
        _MEMO_TEMPLATES[memo_key] = template
    return template


_MEMO_TEMPLATES: dict[tuple[int, str], str] = {}


def compile_schema(
    shapes_by_type: dict[str, list[Any]],
    tag_field: str,
    first_events: int = 3,
    key_paths: dict[str, set[str]] | None = None,
    previous: CompiledSchema | None = None,
    rare_by_type: dict[str, list[Any]] | None = None,
) -> CompiledSchema | None:
    """A compiled schema, or None when these shapes cannot be compiled (the general path stays).

    ``key_paths``: per type, the fields seen holding a ``#`` value; the loop collects their values.
    ``previous``: the schema this one replaces (its counts flushed); unchanged types are reused."""
    try:
        return CompiledSchema(shapes_by_type, tag_field, first_events, key_paths, previous, rare_by_type)
    except (TypeError, ValueError, msgspec.MsgspecError):
        return None
