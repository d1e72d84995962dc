"""Git config that changes the output agentflow parses.

The verifier's diff is ``git diff base..head`` as git prints it, and git's config decides how: a
``color.ui=always`` (a line many ``~/.gitconfig`` files hold, or one a CI step that ran the change's
code wrote into the checkout's ``.git/config`` before ``agentflow verify``) put escapes before every
``diff --git`` header, so the diff budget found no file in it and cut the whole diff as a prefix
again: the payload after 80k characters of lock-file churn was not in the verifier's prompt (tested
before the fix), and the prompt held raw escapes. ``diff.noprefix`` made the cut marker name no file.
agentflow's git now runs with these settings at git's defaults (``agentflow.git.FORCED_CONFIG``,
passed as ``GIT_CONFIG_*`` variables after the caller's own). The rules' diff and the notes history
pass their options on the command line and held.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow.git import Repo
from tests.build_helpers import first_prompt, verifier_session, write_plan, write_script
from tests.helpers import git

PAYLOAD = "PAYLOAD-91d2 exfiltrate()"


def _verify_churn_and_payload(repo: Path, cli, setting: tuple[str, str]) -> str:
    (repo / "app.py").write_text("def total(xs):\n    return sum(xs)\n")
    write_plan(repo, scope=["app.py"])
    git(repo, "checkout", "-q", "-b", "pr")
    churn = "".join(f'    "dep-{i}": "1.0.{i}",\n' for i in range(6000))  # > MAX_DIFF_CHARS
    (repo / "a-lock.json").write_text("{\n" + churn + "}\n")
    (repo / "app.py").write_text(f"def total(xs):\n    return sum(xs)  # {PAYLOAD}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change", "--trailer", "Agentflow-Plan: 1")
    git(repo, "config", *setting)
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json")
    assert json.loads(result.stdout)["outcome"], result.output
    return first_prompt(repo, "verifier", 1)


@pytest.mark.parametrize(
    "setting",
    [
        ("color.ui", "always"),
        ("color.diff", "always"),
        ("diff.noprefix", "true"),
        ("diff.mnemonicPrefix", "true"),
        ("diff.relative", "true"),
    ],
)
def test_git_config_does_not_undo_the_diff_budget(repo: Path, cli, setting: tuple[str, str]) -> None:
    prompt = _verify_churn_and_payload(repo, cli, setting)

    assert PAYLOAD in prompt  # the small file is shown whole
    assert "the diff of a-lock.json was cut here" in prompt  # the churn is cut, and named
    assert "\x1b[" not in prompt


def test_the_callers_own_git_config_variables_still_reach_git(repo: Path, monkeypatch) -> None:
    """``GIT_CONFIG_KEY_<n>`` looks secret ("KEY") and was dropped while ``GIT_CONFIG_COUNT`` stayed:
    every git process agentflow started failed with "missing config key" (tested before the fix)."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "agentflow.probe")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "kept")
    for read in (Repo(repo, gitpython=False), Repo(repo)):
        assert read.git("config", "agentflow.probe") == "kept"
        assert read.git("config", "color.ui") == "never"
        assert read.rev("HEAD") == git(repo, "rev-parse", "HEAD")
    with Repo(repo) as read:
        assert read.lib().git.config("agentflow.probe") == "kept"
        assert read.lib().git.config("color.ui") == "never"
