"""Configuration: agentflow.yaml or [tool.agentflow], every problem as `file: key: problem`."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.config import Config, load_config
from agentflow.errors import ConfigError


def _claude_md(repo: Path) -> None:
    (repo / "CLAUDE.md").write_text("# P\n\n## One\n\n**When to use:** x\n")


def test_defaults_without_a_config(repo):
    assert load_config(repo) == Config()


def test_pyproject_section_is_read(repo):
    (repo / "pyproject.toml").write_text("[tool.agentflow]\nbase = 'trunk'\n[tool.agentflow.limits]\nmax_cycles = 5\n")
    config = load_config(repo)
    assert (config.base, config.limits.max_cycles) == ("trunk", 5)
    assert config.source == "pyproject.toml [tool.agentflow]"


def test_agentflow_yaml_wins_over_pyproject(repo):
    (repo / "pyproject.toml").write_text("[tool.agentflow]\nbase = 'trunk'\n")
    (repo / "agentflow.yaml").write_text("base: develop\n")
    assert load_config(repo).base == "develop"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n  builder:\n    backnd: scripted\n",
            "agentflow.yaml:3: models.builder.backnd: unknown key (did you mean `backend`?)",
        ),
        ("limits:\n  max_cycles: many\n", "agentflow.yaml:2: limits.max_cycles: Input should be a valid integer"),
        (
            "limits:\n  max_cycles: 0\n",
            "agentflow.yaml:2: limits.max_cycles: Input should be greater than or equal to 1",
        ),
        ("models:\n  verifier: {backend: gpt}\n", "agentflow.yaml:2: models.verifier.backend: Input should be"),
        ("- just\n- a list\n", "agentflow.yaml: top level must be a mapping of sections"),
    ],
)
def test_bad_config_is_one_line_per_problem(repo, text, expected):
    (repo / "agentflow.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(repo)
    assert str(info.value).startswith(expected)


def test_every_problem_is_reported(repo):
    (repo / "agentflow.yaml").write_text("bse: main\nlimits: {max_turns: 0}\n")
    lines = str(pytest.raises(ConfigError, load_config, repo).value).splitlines()
    assert sorted(lines) == [
        "agentflow.yaml:1: bse: unknown key (did you mean `base`?)",
        "agentflow.yaml:2: limits.max_turns: Input should be greater than or equal to 1 (the default is `60`)",
    ]


def test_malformed_yaml_names_the_line_through_the_cli(repo, cli):
    _claude_md(repo)
    (repo / "agentflow.yaml").write_text("base: main\nchecks: [pytest\n")
    result = cli("patterns", "list")
    assert result.exit_code == 2
    assert "agentflow: error: agentflow.yaml:3:" in result.output
    assert "fix the YAML syntax" in result.output


def test_unknown_key_through_the_cli(repo, cli):
    _claude_md(repo)
    (repo / "agentflow.yaml").write_text("gate:\n  require_signatures: true\n")
    result = cli("patterns", "list")
    assert result.exit_code == 2
    assert (
        "agentflow: error: agentflow.yaml:2: gate.require_signatures: unknown key (did you mean `require_signature`?)"
        in result.output
    )


def test_bad_pyproject(repo, cli):
    _claude_md(repo)
    (repo / "pyproject.toml").write_text("[tool.agentflow\n")
    result = cli("patterns", "list")
    assert result.exit_code == 2
    assert "pyproject.toml:" in result.output and "fix the TOML syntax" in result.output
    (repo / "pyproject.toml").write_text("[tool.agentflow]\nchecks = 'pytest'\n")
    result = cli("patterns", "list")
    assert result.exit_code == 2
    assert "pyproject.toml [tool.agentflow]: checks: Input should be a valid list" in result.output
