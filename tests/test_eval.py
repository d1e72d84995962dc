"""`agentflow eval verifier`: the built-in dataset offline, bad datasets, scripted runs, baselines,
record and replay through the anthropic SDK against the fake Messages API, and the HTML report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.fakeapi import fake_anthropic, message, tool_use  # noqa: F401 (a fixture)
from tests.helpers import command_in_fresh_process, git, need_tool

PATCH = """diff --git a/notes.txt b/notes.txt
new file mode 100644
--- /dev/null
+++ b/notes.txt
@@ -0,0 +1,2 @@
+first
+second
"""


def _verdict(decision: str, findings: list | None = None) -> dict:
    return {"decision": decision, "summary": "s", "criteria": [], "findings": findings or []}


def _dataset(repo: Path, tmp_path: Path, plan: str = "# Add notes\n") -> Path:
    cases = [
        {
            "id": "good",
            "repo": str(repo),
            "base": "main",
            "patch": PATCH,
            "plan": plan,
            "label": "approve",
            "tags": ["clean"],
        },
        {
            "id": "bad",
            "repo": str(repo),
            "base": "main",
            "patch": PATCH.replace("+second", "+secret"),
            "plan": plan,
            "label": "reject",
            "gold": [{"file": "notes.txt", "lines": [2, 2], "summary": "a secret"}],
            "tags": ["wrong"],
        },
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def _script(tmp_path: Path, decisions: list[str]) -> Path:
    finding = {"id": "F1", "severity": "high", "file": "notes.txt", "line": 2, "message": "a secret"}
    sessions = [
        [
            {
                "tool_calls": [{"name": "submit_verdict", "input": _verdict(d, [finding] if d != "approve" else [])}],
                "usage": {"input_tokens": 100, "output_tokens": 10},
                "cost_usd": 0.01,
            }
        ]
        for d in decisions
    ]
    path = tmp_path / "script.yaml"
    path.write_text(yaml.safe_dump({"verifier": sessions}))
    return path


def test_builtin_dataset_runs_offline_and_leaves_the_repository_alone(repo, cli, tmp_path):
    out = tmp_path / "builtin.json"
    result = cli("eval", "verifier", "--builtin", "-j", "2", "--format", "json", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    data = json.loads(out.read_text())
    assert 20 <= data["cases"] <= 40
    for key in (
        "accuracy",
        "balanced_accuracy",
        "false_approval_rate",
        "false_block_rate",
        "finding_recall",
        "no_verdict_rate",
    ):
        assert 0 <= data[key] <= 1
    assert set(data["cost_usd_per_case"]) == {"p50", "p95"} and set(data["seconds_per_case"]) == {"p50", "p95"}
    by_id = {c["id"]: c for c in data["per_case"]}
    # the plausible-but-wrong kinds the issue lists are all there, and none is approved
    for case in (
        "nested-scope-hides-capsule",
        "group-key-missing-capsule-segment",
        "documents-route-path-param",
        "scoped-key-renamed-arg",
        "test-weakened-role",
    ):
        assert by_id[case]["label"] == "reject" and by_id[case]["outcomes"] == ["changes_requested"]
    assert by_id["tenant-display-name"]["outcomes"] == ["changes_requested"]  # the script's false block
    assert data["false_block_rate"] > 0 and data["per_tag"]["wrong"]["runs"] >= 5
    assert git(repo, "status", "--porcelain") == "" and not (repo / ".agentflow").exists()


def test_bad_dataset_line_names_file_and_line(repo, cli, tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(
        json.dumps({"id": "a", "repo": str(repo), "base": "main", "patch": PATCH, "label": "approve"})
        + '\n{"id": "b", "repo": "'
        + str(repo)
        + '", "base": "main", "patch": "x", "label": "maybe"}\n'
    )
    result = cli("eval", "verifier", str(path))
    assert result.exit_code == 2
    assert f"{path}:2: label: 'maybe' is not approve or reject" in result.stderr
    path.write_text("{not json\n")
    result = cli("eval", "verifier", str(path))
    assert result.exit_code == 2 and f"{path}:1: not valid JSON" in result.stderr


def test_scripted_cases_take_sessions_in_order_and_report_md(repo, cli, tmp_path):
    dataset = _dataset(repo, tmp_path)
    result = cli(
        "eval",
        "verifier",
        str(dataset),
        "--script",
        str(_script(tmp_path, ["approve", "request_changes"])),
        "--format",
        "md",
    )
    assert result.exit_code == 0, result.stderr
    assert "| Accuracy | 100.0% |" in result.stdout
    assert "## Confusion matrix" in result.stdout and "| label reject | 0 | 1 | 0 |" in result.stdout
    assert "| Finding recall against gold | 100.0% |" in result.stdout
    short = cli("eval", "verifier", str(dataset), "--script", str(_script(tmp_path, ["approve"])))
    assert short.exit_code == 2 and "the script has 1 verifier session(s) and the eval needs 2" in short.stderr
    assert git(repo, "status", "--porcelain") == ""


def test_baseline_exits_1_on_a_regressed_rate(repo, cli, tmp_path):
    dataset = _dataset(repo, tmp_path)
    good = tmp_path / "good.json"
    ok = cli(
        "eval",
        "verifier",
        str(dataset),
        "--script",
        str(_script(tmp_path, ["approve", "request_changes"])),
        "--format",
        "json",
        "-o",
        str(good),
    )
    assert ok.exit_code == 0
    worse = cli(
        "eval",
        "verifier",
        str(dataset),
        "--script",
        str(_script(tmp_path, ["approve", "approve"])),
        "--baseline",
        str(good),
    )
    assert worse.exit_code == 1
    assert "regressed: false_approval_rate 0.000 -> 1.000" in worse.stderr
    same = cli(
        "eval",
        "verifier",
        str(dataset),
        "--script",
        str(_script(tmp_path, ["approve", "request_changes"])),
        "--baseline",
        str(good),
    )
    assert same.exit_code == 0


def test_record_through_the_anthropic_sdk_then_replay_offline(repo, cli, tmp_path, fake_anthropic, monkeypatch):
    dataset = _dataset(repo, tmp_path)
    finding = {"id": "F1", "severity": "high", "file": "notes.txt", "line": 2, "message": "a secret"}

    def answer(body):
        text = json.dumps(body)
        return message(
            tool_use(
                "submit_verdict", _verdict("request_changes", [finding]) if "+secret" in text else _verdict("approve")
            ),
            usage={"input_tokens": 120, "output_tokens": 30},
        )

    fake_anthropic.handler = answer
    cassette, recorded = tmp_path / "cassette", tmp_path / "recorded.json"
    result = cli(
        "eval",
        "verifier",
        str(dataset),
        "--backend",
        "anthropic",
        "--model",
        "claude-sonnet-4-5",
        "--record",
        str(cassette),
        "--format",
        "json",
        "-o",
        str(recorded),
    )
    assert result.exit_code == 0, result.stderr
    assert len(fake_anthropic.requests) == 2 and len(list(cassette.glob("*.json"))) == 2
    fake_anthropic.stop()  # no network: nothing answers any more
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    replayed = tmp_path / "replayed.json"
    again = cli(
        "eval",
        "verifier",
        str(dataset),
        "--backend",
        "anthropic",
        "--model",
        "claude-sonnet-4-5",
        "--replay",
        str(cassette),
        "--format",
        "json",
        "-o",
        str(replayed),
    )
    assert again.exit_code == 0, again.stderr
    first, second = json.loads(recorded.read_text()), json.loads(replayed.read_text())
    for key in (
        "accuracy",
        "balanced_accuracy",
        "false_approval_rate",
        "false_block_rate",
        "finding_recall",
        "no_verdict_rate",
        "cost_usd_per_case",
        "tokens_per_case",
    ):
        assert first[key] == second[key], key
    assert first["accuracy"] == 1.0
    # a changed prompt misses the cassette: exit 3 naming the case
    changed = _dataset(repo, tmp_path, plan="# Add notes, carefully\n")
    miss = cli("eval", "verifier", str(changed), "--backend", "anthropic", "--replay", str(cassette))
    assert miss.exit_code == 3
    assert "case good (repeat 1): a model request is not in the cassette" in miss.stderr


def test_scripted_record_replay_and_claude_code_refusal(repo, cli, tmp_path):
    dataset = _dataset(repo, tmp_path)
    cassette = tmp_path / "c"
    rec = cli(
        "eval",
        "verifier",
        str(dataset),
        "--script",
        str(_script(tmp_path, ["approve", "request_changes"])),
        "--record",
        str(cassette),
        "--repeat",
        "1",
        "--format",
        "json",
    )
    assert rec.exit_code == 0, rec.stderr
    rep = cli("eval", "verifier", str(dataset), "--replay", str(cassette), "--format", "json")
    assert rep.exit_code == 0, rep.stderr
    assert json.loads(rec.stdout)["accuracy"] == json.loads(rep.stdout)["accuracy"] == 1.0
    refused = cli("eval", "verifier", str(dataset), "--backend", "claude-code", "--record", str(cassette))
    assert refused.exit_code == 2 and "claude-code backend cannot be recorded" in refused.stderr


def test_repeat_agreement_and_html_report_in_a_browser(repo, cli, tmp_path):
    browser = need_tool("chromium", "chromium-browser", "google-chrome")
    dataset = _dataset(repo, tmp_path)
    page = tmp_path / "eval.html"
    script = _script(tmp_path, ["approve", "approve", "request_changes", "approve"])
    result = cli(
        "eval", "verifier", str(dataset), "--script", str(script), "--repeat", "2", "--format", "html", "-o", str(page)
    )
    assert result.exit_code == 0, result.stderr
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "<svg" in dom and "Outcomes per label" in dom
    assert "Agreement across repeats" in dom and "50.0%" in dom  # good agreed, bad did not
    assert ">good<" in dom and ">bad<" in dom and "changes_requested, approved" in dom


def test_a_scripted_eval_never_imports_anthropic(repo, tmp_path):
    dataset = _dataset(repo, tmp_path)
    script = _script(tmp_path, ["approve", "request_changes"])
    args = ["eval", "verifier", str(dataset), "--script", str(script)]
    assert command_in_fresh_process(repo, args, ("anthropic",)) == (0, [])


def test_help_has_examples(cli):
    result = cli("eval", "verifier", "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "agentflow eval verifier --builtin" in result.output


def test_record_ledger_imports_the_runs_into_the_repository_ledger(repo, cli, tmp_path):
    dataset = _dataset(repo, tmp_path)
    script = _script(tmp_path, ["approve", "request_changes"])
    result = cli("eval", "verifier", str(dataset), "--script", str(script), "--record-ledger")
    assert result.exit_code == 0, result.stderr
    assert "recorded 2 verify run(s) in the ledger" in result.stderr
    log = cli("log", "--json")
    assert log.exit_code == 0
    assert log.stdout.count('"verdict_recorded"') == 2
