"""Terminal control sequences in what agentflow prints.

A verifier's summary and finding messages (model text, steerable by the change), the change's file
names and a verdict note's summary (anybody's who can push notes) reached the terminal raw: ``ESC [
1A ESC [ 2K`` erased the line above (a "gate closed" or "rejected" line, replaced by the model's own
"gate open"), ``ESC ] 52 ; c ; <base64>`` wrote the developer's clipboard in terminals that allow it
(kitty, WezTerm, tmux, iTerm2 when permitted): a command waiting to be pasted into a shell; a bare
``\\r`` overwrote a line from its start. Tested before the fix with ``verify --format text`` (stdout
and its progress lines on stderr), ``gate`` (a pushed note's summary as the reason, which the
pre-push hook prints too) and ``show``. Every line the CLI prints now shows control characters
(C0 but newline and tab, DEL, C1, and the bidirectional overrides) as ``\\xNN`` / ``\\uNNNN``."""

from __future__ import annotations

import re
from pathlib import Path

from tests.build_helpers import verifier_session, write_plan, write_script
from tests.gate_helpers import add_verdict, commit_file
from tests.helpers import git

ESC = "\x1b"
OSC52 = f"{ESC}]52;c;cm0gLXJmIH4K{ESC}\\"
ERASE = f"{ESC}[1A{ESC}[2K"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _raw(text: str) -> list[str]:
    return sorted({repr(m.group()) for m in RAW.finditer(text)})


def test_verify_prints_no_control_sequence(repo: Path, cli) -> None:
    (repo / "agentflow.yaml").write_text("sandbox: {mode: off}\n")
    write_plan(repo, scope=["src/**"])
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / f"a{OSC52}.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change", "--trailer", "Agentflow-Plan: 1")
    summary = f"fine{ERASE}{OSC52}\rgate open \u202eneppo\u202c"
    script = write_script(repo, {"verifier": [verifier_session(summary=summary, decision="reject")]})

    result = cli("verify", "--base", "main", "--script", str(script), "--format", "text")

    assert _raw(result.stdout) == [] and _raw(result.stderr) == [], (result.stdout, result.stderr)
    assert "\\x1b]52;c;cm0gLXJmIH4K" in result.stdout  # shown, not interpreted
    run_id = re.search(r"run (r-[0-9a-f-]+)", result.stdout).group(1)
    shown = cli("show", run_id)
    assert _raw(shown.stdout) == [] and _raw(shown.stderr) == [], shown.stdout


def test_gate_prints_no_control_sequence_from_a_note(repo: Path, cli) -> None:
    commit_file(repo, "app.py", "print('x')\n")
    add_verdict(repo, "HEAD", outcome="rejected", reason=f"no{ERASE}gate open: approved{OSC52}")

    result = cli("gate", "--base", "main")

    assert result.exit_code == 1
    assert _raw(result.stdout) == [] and _raw(result.stderr) == [], result.stdout
    assert "\\x1b[1A" in result.stdout


def test_a_refused_merge_prints_no_control_sequence(repo: Path, cli) -> None:
    """``merge`` refuses with the gate's reasons as its error (a pushed note's reason among them)."""
    git(repo, "checkout", "-q", "-b", "pr")
    commit_file(repo, "app.py", "print('x')\n")
    add_verdict(repo, "HEAD", outcome="rejected", reason=f"no{ERASE}merged{OSC52}")
    git(repo, "checkout", "-q", "main")

    result = cli("merge", "pr", "--into", "main")

    assert result.exit_code == 1
    assert _raw(result.stdout) == [] and _raw(result.stderr) == [] and "\\x1b[1A" in result.stderr, result.stderr
