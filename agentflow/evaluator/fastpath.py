"""The compiled fast path: decode events straight into schema-checked msgspec Structs.

Measured (benchmarks/README.md): building a Python dict per event with orjson and then computing
its shape in Python costs several microseconds per event. Once the shapes of a log are known,
msgspec can do both in C: the schemas learned so far are compiled into one tagged ``Struct`` class
per event type (``tag_field`` = the type field), with ``forbid_unknown_fields``, exact field types
and ``UNSET`` defaults for optional fields. Decoding a line then *is* the shape check. What is left
in Python is a small generated function per type that turns the few things that can vary (which
optional fields are absent, which of several JSON types a field has) into an integer *mask*; the
(type, mask) pair identifies the event's shape exactly.

Any line the compiled schema rejects (a new type, a new or missing field, another JSON type,
malformed input) goes through the general path (``Aggregator.add_lines``), which records it
exactly; the schema is then recompiled so the next events of that shape are fast too. So results
are the same as without the fast path; only the speed differs (``tests`` compare both).

Used only for plain envelopes whose type is a top-level field (``type`` or a top-level
``--type-field``); EventBridge, CloudEvents and ``event_type`` logs use the general path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import msgspec

from agentflow.evaluator.keys import key_template, template_of

MAX_TEMPLATES = 50  # as in schema.py (not imported: schema imports this module)
MAX_LABEL_KEYS = 256  # distinct (segments, labels) counted per key field before spilling
OTHER_TEMPLATE = "(other)"

UNSET = msgspec.UNSET
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
_PY = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),),
       "array": (list,)}
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
                node = nodes[path] = Node(key, path, [], key_like=path in key_paths)
                (nodes[parent_path].children if parent_path else roots).append(node)
            if json_type not in node.types:
                node.types.append(json_type)
    for shape in shapes:
        present = {path for path, _ in shape.fields}
        objects = {path for path, json_type in shape.fields if json_type == "object"}
        for path, node in nodes.items():
            parent_path = path.rpartition(".")[0]
            if path not in present and (not parent_path or parent_path in objects):
                node.optional = True
    return roots


class CompiledSchema:
    """Struct classes, a decoder and mask functions for the types learned so far."""

    def __init__(self, shapes_by_type: dict[str, list[Any]], tag_field: str):
        self.tag_field = tag_field
        self.types: dict[type, CompiledType] = {}
        self.updates: dict[type, Any] = {}  # Struct class -> its type's update function
        classes = []
        for index, (name, shapes) in enumerate(sorted(shapes_by_type.items())):
            compiled = CompiledType(name, shapes, tag_field, f"T{index}")
            self.types[compiled.struct] = compiled
            self.updates[compiled.struct] = compiled.update
            classes.append(compiled.struct)
        self.decoder = msgspec.json.Decoder(Union[tuple(classes)] if len(classes) > 1 else classes[0])


class CompiledType:
    def __init__(self, name: str, shapes: list[Any], tag_field: str, class_name: str):
        self.name = name
        key_paths = {path for shape in shapes for path, _ in shape.key_paths}
        self.roots = [n for n in _tree(shapes, key_paths) if n.path != tag_field]
        self.tag_index = next((i for i, (p, _) in enumerate(shapes[0].fields) if p == tag_field), 0)
        self.tag_field = tag_field
        self.bits = 0
        self.struct = self._struct(self.roots, class_name, tag=name)
        self.masks: dict[int, list[Any]] = {}  # mask -> [count, lines, examples]
        self.templates: dict[str, dict[str, int]] = {}  # path -> template -> events (spilled)
        self.label_counts: dict[str, dict[tuple, int]] = {}  # path -> (segments, *labels) -> events
        self.update = self._generate()  # update(struct) -> the mask's [count, lines, examples], counted
        self.fields_of: dict[int, tuple[tuple[str, str], ...]] = {}

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
            annotation = Union[tuple(dict.fromkeys(options))] if len(options) > 1 else options[0]
            fields.append((attr, annotation, UNSET) if node.optional else (attr, annotation))
        kwargs: dict[str, Any] = {"rename": rename, "forbid_unknown_fields": True, "kw_only": True, "gc": False}
        if tag is not None:
            kwargs.update(tag_field=self.tag_field, tag=tag)
        return msgspec.defstruct(class_name, fields, **kwargs)

    def _take(self, bits: int) -> int:
        shift = self.bits
        self.bits += bits
        return shift

    # -- the generated mask function --------------------------------------------------------------

    def _generate(self) -> Any:
        namespace: dict[str, Any] = {"UNSET": UNSET, "masks": self.masks, "spill": self._spill}
        body: list[tuple[int, str]] = []
        for index, node in enumerate(self.roots):
            body += self._node_lines(node, index, "o", 1, namespace)
        source = ["def update(o):", "    m = 0"]
        source += ["    " * (level + 1) + text for level, text in body]
        source += [
            "    entry = masks.get(m)",
            "    if entry is None:",
            "        entry = masks[m] = [0, [], {}]",
            "    entry[0] += 1",
            "    return entry",
        ]
        exec("\n".join(source), namespace)  # noqa: S102 - source built from our own field tree only
        return namespace["update"]

    def _node_lines(self, node: Node, index: int, var: str, depth: int, ns: dict[str, Any]) -> list[tuple[int, str]]:
        """Statements (indent level relative to the caller, text) adding this field's bits to ``m``."""
        value = f"v{depth}"
        inner: list[tuple[int, str]] = []
        if node.codes:
            table = f"c_{node.code_shift}"
            ns[table] = {self._python_type(node, code): i << node.code_shift for i, code in enumerate(node.codes)}
            inner.append((0, f"m |= {table}[type({value})]"))
        if node.key_like:
            # Count by (segments, labels) and turn them into templates at flush time (cheaper per
            # event than building the template); after MAX_LABEL_KEYS distinct ones, spill.
            counts = f"kl_{len(ns)}"
            ns[counts] = self.label_counts.setdefault(node.path, {})
            inner += [
                (0, f"if type({value}) is str and '#' in {value}:"),
                (1, f"p = {value}.split('#')"),
                # An upper-case letter at an odd position (a possible label) may shift the pairing:
                # template such keys exactly. One join and lower() is the cheapest exact pre-check
                # measured (about 9% of fast-path time on keyed events, against 15% for any(map(...))).
                (1, "q = ''.join(p[1::2])"),
                (1, "if q != q.lower(): spill(" + repr(node.path) + f", {value})"),
                (1, "else:"),
                (2, f"lk = (len(p), *p[::2]); c = {counts}.get(lk)"),
                (2, f"if c is not None: {counts}[lk] = c + 1"),
                (2, f"elif len({counts}) < {MAX_LABEL_KEYS}: {counts}[lk] = 1"),
                (2, f"else: spill({node.path!r}, {value})"),
            ]
        if node.struct is not None:
            struct_name = f"s_{len(ns)}"
            ns[struct_name] = node.struct
            children: list[tuple[int, str]] = []
            for child_index, child in enumerate(node.children):
                children += self._node_lines(child, child_index, value, depth + 1, ns)
            if children:
                inner.append((0, f"if type({value}) is {struct_name}:"))
                inner += [(level + 1, text) for level, text in children]
        if not node.optional and not inner:
            return []
        lines = [(0, f"{value} = {var}.f{index}")]
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
        return {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None),
                "array": list}[code]

    def _spill(self, path: str, value: str) -> None:
        counts = self.templates.setdefault(path, {})
        template = key_template(value)
        if template not in counts and len(counts) >= MAX_TEMPLATES:
            template = OTHER_TEMPLATE
        counts[template] = counts.get(template, 0) + 1

    def take_templates(self) -> dict[str, dict[str, int]]:
        """Template counts since the last call (label counts turned into templates), then reset."""
        out = {path: dict(counts) for path, counts in self.templates.items()}
        for path, counts in self.label_counts.items():
            target = out.setdefault(path, {})
            for memo_key, n in counts.items():
                template = template_of(memo_key)
                target[template] = target.get(template, 0) + n
            counts.clear()  # the generated code holds this very dict: clear, never replace
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
            if node.codes:
                json_type = node.codes[(mask >> node.code_shift) & ((1 << node.code_bits) - 1)]
            else:
                json_type = node.types[0]
            out.append((node.path, json_type))
            if json_type == "object":
                self._walk(node.children, mask, out)


def compile_schema(shapes_by_type: dict[str, list[Any]], tag_field: str) -> CompiledSchema | None:
    """A compiled schema, or None when these shapes cannot be compiled (the general path stays)."""
    try:
        return CompiledSchema(shapes_by_type, tag_field)
    except (TypeError, ValueError, msgspec.MsgspecError):
        return None
