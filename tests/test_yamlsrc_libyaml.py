"""``yamlsrc.load`` parses with libyaml when PyYAML has it (plans and the config are parsed by every
build run before its first model call, #19 item 5): the same data, key lines and duplicates, and a
refused text's error is PyYAML's own, as before."""

from __future__ import annotations

import pytest
import yaml

from agentflow import yamlsrc

TEXT = """\
id: 7
title: "A plan: with a colon"
scope: ["src/**", tests/x.py]
checks:
  - pytest -q
  - ruff check .
nested: {a: 1, b: [x, y]}
id: 8
"""


def test_libyaml_and_pyyaml_read_the_same_data_lines_and_duplicates(monkeypatch):
    if getattr(yaml, "CSafeLoader", None) is None:
        pytest.skip("PyYAML without libyaml")
    fast = yamlsrc.load(TEXT)
    monkeypatch.setattr(yamlsrc, "_FAST_LOADER", None)
    slow = yamlsrc.load(TEXT)
    assert fast.data == slow.data and fast.data["id"] == 8
    assert fast.lines == slow.lines and fast.lines[("checks", "1")] == 6
    assert fast.duplicates == slow.duplicates == [(("id",), 8, 1)]


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a: b: c\n", "a:\n  - x\n - y\n", "\t- tab\n"])
def test_a_refused_text_raises_pyyamls_own_error(text, monkeypatch):
    with pytest.raises(yaml.YAMLError) as fast:
        yamlsrc.load(text)
    monkeypatch.setattr(yamlsrc, "_FAST_LOADER", None)
    with pytest.raises(yaml.YAMLError) as slow:
        yamlsrc.load(text)
    assert yamlsrc.syntax_error(fast.value) == yamlsrc.syntax_error(slow.value)
    assert type(fast.value) is type(slow.value)


def test_libyaml_does_the_parsing_when_present(monkeypatch):
    if getattr(yaml, "CSafeLoader", None) is None:
        pytest.skip("PyYAML without libyaml")
    used = []
    real = yamlsrc._load
    monkeypatch.setattr(yamlsrc, "_load", lambda text, cls: used.append(cls) or real(text, cls))
    yamlsrc.load("a: 1\n")
    assert used == [yaml.CSafeLoader]
