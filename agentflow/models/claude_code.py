"""The ``claude-code`` backend: builder and verifier sessions run by Claude Code.

Claude Code (the CLI that ``claude-agent-sdk`` carries in its wheel) runs the whole agent loop
itself; agentflow sets it up, watches it and records it:

* **Builder**: a session in the plan's worktree (``cwd``) with Claude Code's file tools and Bash.
  A ``PreToolUse`` hook, which sees every tool call, refuses paths outside the worktree or inside
  ``.git``, network tools and git commands that would commit or move branches (agentflow commits
  what changed, as for any builder).
* **Verifier**: a fresh session (never resumed or forked from the builder's) with read-only tools
  (Read, Glob, Grep). Its only way to answer is the in-process MCP tool ``submit_verdict``, whose
  input is validated with :class:`agentflow.verdict.Verdict`; a session without a valid verdict,
  or one that ends in any error, is ``failed`` (orchestration makes that ``no_verdict``).
* **Record**: ``SessionStarted``, one ``ModelCalled`` per model reply, one ``ToolCalled`` per tool
  result, ``SessionEnded`` with the usage, cost and turns Claude Code reports and its session id
  as ``external_id``; the transcript is every SDK message as JSON.

Filesystem settings (``~/.claude``, the worktree's ``.claude/``, ``.mcp.json``), auto-memory and
session persistence are off: a builder must not be able to plant hooks, MCP servers or memories
that a later verifier session would load. The patterns of CLAUDE.md reach both roles through the
prompt agentflow renders, like for every backend.

``claude_agent_sdk`` is imported only inside this module's functions, and only when the backend
is used (it is an optional extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import importlib.util
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow.errors import UsageError
from agentflow.events import MAX_EVENT_STRING, Usage
from agentflow.paths import PathRefused, confine, pattern_problem
from agentflow.redact import is_secret_name
from agentflow.sandbox import ALLOWED_ENV, Sandbox, holds_nothing, require_nested
from agentflow.session_types import ProgressFn, SessionRecorder, SessionResult, SessionSpec, submitted_summary
from agentflow.text import one_line

if TYPE_CHECKING:
    from agentflow.ledger import Ledger

INSTALL_FIX = "install the extra: pip install 'agentflow[claude-code]'"
SERVER_NAME = "agentflow"
VERDICT_TOOL = f"mcp__{SERVER_NAME}__submit_verdict"
BUILDER_TOOLS = ("Read", "Write", "Edit", "Glob", "Grep", "Bash")
VERIFIER_TOOLS = ("Read", "Glob", "Grep")
NETWORK_TOOLS = ("WebFetch", "WebSearch")
PATH_KEYS = ("file_path", "path", "notebook_path")
PATTERN_KEYS = ("pattern", "glob")  # Glob's pattern and Grep's glob filter may carry a folder
# git subcommands that commit, move refs or reach a remote: agentflow owns history in the worktree.
GIT_HISTORY = re.compile(
    r"\bgit\b(?:\s+-[Cc]\s+\S+|\s+--?[\w-]+(?:=\S+)?)*\s+"
    r"(commit|commit-tree|push|pull|fetch|reset|rebase|checkout|switch|stash|merge|cherry-pick|revert|tag|"
    r"branch|worktree|notes|update-ref|am|remote|config|filter-branch|replace|gc)\b"
)
# Environment the CLI always gets: auto-memory would carry a builder's notes into the verifier.
FORCED_ENV = {"CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1"}
# The subprocess scrub: Claude Code strips its own credentials (Anthropic, cloud providers) from the
# environment of what it starts (Bash, hooks, MCP servers); it needs its Bash sandbox for it.
SCRUB_ENV = {"CLAUDE_CODE_SUBPROCESS_ENV_SCRUB": "1"}
# Claude Code's own Bash sandbox (bubblewrap and socat on Linux), in both sandbox modes: every Bash
# command in its own namespaces with a fresh /proc, writes only in the worktree, no network (its
# proxy allows no domain), no escape hatch, and no session at all if it cannot start. Inside
# agentflow's sandbox it nests (Sandbox.wrap(nested=True)); with sandbox.mode off it is the only one.
BASH_SANDBOX = {
    "enabled": True,
    "failIfUnavailable": True,
    "autoAllowBashIfSandboxed": True,
    "allowUnsandboxedCommands": False,
    "network": {"allowedDomains": []},
}
# Claude Code's login and account files: the CLI reads them, its Bash commands must not.
CLI_SECRETS = (".credentials.json", ".claude.json")
BASH_SANDBOX_TOOLS = ("bwrap", "socat")
BASH_SANDBOX_FIX = (
    "install bubblewrap and socat (apt-get install bubblewrap socat): Claude Code's Bash sandbox needs both"
)
# What passes into agentflow's sandbox around the CLI besides the allowlist: what the CLI needs to
# reach the model (its credentials, endpoint and proxy settings) and the SDK's own variables.
CLI_ENV = (
    "ANTHROPIC_*",
    "CLAUDE_*",
    "AWS_*",
    "GOOGLE_*",
    "AZURE_*",
    "CLOUD_ML_*",
    "VERTEX_*",
    "DISABLE_*",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
    "no_proxy",
    "PWD",
    "TRACEPARENT",
    "TRACESTATE",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
)
# Claude Code's login and settings: it keeps (and writes) them, nothing else in the home is writable.
CLI_KEEP = (".claude/.credentials.json",)
# Defaults unless the user's environment says otherwise: no telemetry, update checks or other
# traffic besides the model API (a CI tool should not phone home).
QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
# Secret-looking variables the CLI itself may need to reach a model (Anthropic, Bedrock, Vertex,
# Foundry); every other secret (AGENTFLOW_SIGNING_KEY, GITHUB_TOKEN, ...) is blanked.
CLI_CREDENTIAL_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "AWS_", "GOOGLE_", "AZURE_", "CLOUD_ML_", "VERTEX_")
STDERR_LINES = 20

BUILDER_NOTE = """

## This session runs in Claude Code

The tools named above are provided by Claude Code here: explore with Read, Glob and Grep, change
files with Write and Edit, run commands (tests, builds) with Bash. Work only inside {root}: paths
outside it, `.git`, network tools and git commands that commit, push or switch branches are
refused. agentflow commits your changes when the session ends. There is no `finish` tool: end the
session with a final reply that summarises what you changed.
"""

VERIFIER_NOTE = """

## This session runs in Claude Code

Your tools are read-only: Read, Glob and Grep, inside {root}. You cannot change files or run
commands; the check results are in the prompt. Submit your verdict by calling the tool
`{verdict_tool}` (it is `submit_verdict` above) exactly once with the verdict JSON. If it reports
an invalid verdict, fix the input and call it again. A session that ends without a valid verdict
counts as no verdict.
"""


# What Claude Code's Bash sandbox keeps every command from writing in its working folder (its CLI's
# list, 2.1.x, with CLAUDE_CODE_SUBPROCESS_ENV_SCRUB): it mounts over each, and bwrap makes a missing
# one there as an empty file, which outlived the session: every claude-code builder's commit added an
# empty package.json, .gitmodules, .npmrc, lock files and .env files (tests/test_claude_code_build.py).
SANDBOX_MOUNT_POINTS = (
    "bunfig.toml", "package.json", ".npmrc", ".yarnrc", ".yarnrc.yml", ".gitmodules", "package-lock.json",
    "yarn.lock", "pnpm-lock.yaml", ".env", ".env.local", ".env.development", ".env.development.local",
    ".env.test", ".env.test.local", ".env.production", ".env.production.local",
)  # fmt: skip


@contextlib.contextmanager
def mount_points_removed(folder: Path) -> Iterator[None]:
    """Around a session in ``folder``: afterwards, remove the ``SANDBOX_MOUNT_POINTS`` that were not
    there before it and are still what bwrap leaves (an empty regular file with one link). A file the
    session gave content stays; so does one that was there before."""
    before = {name for name in SANDBOX_MOUNT_POINTS if os.path.lexists(folder / name)}
    try:
        yield
    finally:
        for name in SANDBOX_MOUNT_POINTS:
            if name in before:
                continue
            try:
                info = os.lstat(folder / name)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and info.st_size == 0 and info.st_nlink == 1:
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()


def ensure_available() -> None:
    """``UsageError`` (exit 2) unless the optional ``claude-agent-sdk`` package is installed and the
    tools of Claude Code's Bash sandbox (bubblewrap, socat) are on PATH.

    Orchestration can call it before creating a worktree, so a missing extra or tool fails fast.
    """
    if importlib.util.find_spec("claude_agent_sdk") is None:
        raise UsageError("the claude-code backend needs the claude-agent-sdk package", fix=INSTALL_FIX)
    if missing := [tool for tool in BASH_SANDBOX_TOOLS if shutil.which(tool) is None]:
        raise UsageError(
            f"the claude-code backend needs {' and '.join(missing)} for Claude Code's Bash sandbox",
            fix=BASH_SANDBOX_FIX,
        )


# -- policy ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ToolPolicy:
    """Which Claude Code tool calls a session may make; pure, so it is tested without the CLI."""

    root: Path
    role: str

    @property
    def tools(self) -> tuple[str, ...]:
        return VERIFIER_TOOLS if self.role == "verifier" else BUILDER_TOOLS

    def refusal(self, tool: str, tool_input: dict[str, Any]) -> str | None:
        """Why ``tool`` with ``tool_input`` is refused, or None when it is allowed."""
        if tool in NETWORK_TOOLS:
            return f"{tool}: network tools are disabled in agentflow sessions"
        allowed = (*self.tools, VERDICT_TOOL) if self.role == "verifier" else self.tools
        if tool not in allowed:
            return f"{tool}: not available to the {self.role} (allowed: {', '.join(allowed)})"
        for key in PATH_KEYS:
            value = tool_input.get(key)
            if isinstance(value, str) and value and (problem := self._path_problem(value)):
                return f"{tool}: refused path {value!r}: {problem}"
        for key in PATTERN_KEYS:
            value = tool_input.get(key)
            if isinstance(value, str) and (problem := self._pattern_problem(value)):
                return f"{tool}: refused pattern {value!r}: {problem}"
        if tool == "Bash":
            command = str(tool_input.get("command", ""))
            if match := GIT_HISTORY.search(command):
                return (
                    f"Bash: `git {match.group(1)}` is not allowed: agentflow commits the builder's changes "
                    "and owns the branch; leave your changes in the working tree"
                )
        return None

    def _path_problem(self, value: str) -> str | None:
        """The file tools' path policy (``paths.confine``), with Claude Code's absolute paths allowed."""
        try:
            confine(self.root, value, absolute=True)
        except PathRefused as exc:
            return str(exc)
        return None

    @staticmethod
    def _pattern_problem(value: str) -> str | None:
        return pattern_problem(value)


def session_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Overrides for the CLI's environment (the SDK merges them over this process's environment).

    The SDK cannot remove an inherited variable, so secrets the CLI does not need are set to ""
    (Bash children of the session inherit the CLI's environment and must not see agentflow's
    signing key). The CLI keeps its own credentials: it needs them to reach the model.
    """
    environ = dict(os.environ if environ is None else environ)
    overrides = {
        name: "" for name in environ if is_secret_name(name) and not name.upper().startswith(CLI_CREDENTIAL_PREFIXES)
    }
    overrides.update({k: v for k, v in QUIET_ENV.items() if k not in environ})
    overrides.update(FORCED_ENV)
    return overrides


WRAPPER = """#!{python}
# agentflow: starts Claude Code inside agentflow's sandbox with an allowlisted environment
import fnmatch, os, sys
KEEP = {keep!r}
ARGV = {argv!r}
env = {{k: v for k, v in os.environ.items() if any(fnmatch.fnmatchcase(k, p) for p in KEEP)}}
env.update({fixed!r})
if {keyctl!r}:  # a new, empty session keyring: the login's keys are not the sandbox's (docs/security.md)
    import ctypes
    ctypes.CDLL(None).syscall({keyctl!r}, 1, None)
os.execve(ARGV[0], ARGV + sys.argv[1:], env)
"""


def bundled_cli() -> str | None:
    """The Claude Code CLI the SDK would start: its bundled one, else ``claude`` on PATH, outside the
    work tree agentflow runs in (a pull request's ``node_modules/.bin/claude`` ran with the model key
    and the network; ``agentflow.git.trusted_path``, tests/test_attacks_checkout_path.py)."""
    from agentflow.git import trusted_path

    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "_bundled" / "claude"
        if bundled.is_file():
            return str(bundled)
    return shutil.which("claude", path=trusted_path())


def claude_config_paths(environ: dict[str, str] | None = None) -> list[Path]:
    """Where Claude Code keeps its config and login (writable in its sandbox; created if missing)."""
    environ = dict(os.environ if environ is None else environ)
    if configured := environ.get("CLAUDE_CONFIG_DIR"):
        paths = [Path(configured)]
    else:
        home = Path(os.path.expanduser("~"))
        account = home / ".claude.json"  # an empty one may be another sandbox's mount point, gone any moment
        paths = [home / ".claude"] + ([] if holds_nothing(str(account)) else [account])
    paths[0].mkdir(parents=True, exist_ok=True)
    return paths


def confined_cli(sandbox: Sandbox, root: Path, folder: Path) -> str | None:
    """A ``cli_path`` for the SDK that runs Claude Code inside ``sandbox`` (None: mode off, the SDK's
    own CLI). The wrapper keeps only the allowlisted environment and the CLI's model credentials;
    the CLI shares the host network (it must reach the model API), every other rule of the sandbox
    holds: worktree and Claude Code's config the only writable paths, credentials hidden, own PID
    namespace and ``/proc``; and it is nested, so Claude Code's Bash sandbox starts inside it."""
    if sandbox.mode == "off":
        return None
    cli = bundled_cli()
    if cli is None:
        return None  # the SDK reports that it cannot find Claude Code
    argv = sandbox.wrap([cli], root, writable=claude_config_paths(), network=True, keep=CLI_KEEP, nested=True)
    fixed = {"TMPDIR": "/tmp"}
    keep = [*ALLOWED_ENV, *sandbox.env_names, *CLI_ENV]
    wrapper = folder / "claude"
    from agentflow.sandbox import KEYCTL

    text = WRAPPER.format(python=sys.executable, keep=keep, argv=argv, fixed=fixed, keyctl=KEYCTL)
    wrapper.write_text(text, encoding="utf-8")
    wrapper.chmod(0o700)
    return str(wrapper)


def bash_sandbox(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``sandbox`` settings of a session: ``BASH_SANDBOX`` plus Claude Code's own login and
    account files as paths its Bash commands cannot read (they are in its config folder, which
    Bash commands read for their shell snapshots)."""
    environ = dict(os.environ if environ is None else environ)
    folders = [Path(environ["CLAUDE_CONFIG_DIR"])] if environ.get("CLAUDE_CONFIG_DIR") else []
    home = Path(os.path.expanduser("~"))
    paths = [str(folder / name) for folder in (*folders, home / ".claude") for name in CLI_SECRETS]
    return {**BASH_SANDBOX, "filesystem": {"denyRead": [*dict.fromkeys([*paths, str(home / ".claude.json")])]}}


def system_prompt_append(spec: SessionSpec) -> str:
    """agentflow's role prompt plus how the role's tools map to Claude Code's."""
    note = VERIFIER_NOTE if spec.role == "verifier" else BUILDER_NOTE
    return spec.system + note.format(root=spec.root, verdict_tool=VERDICT_TOOL)


# -- the session ----------------------------------------------------------------------------------


class _Stop(Exception):
    """Ends the session early from inside the message loop (a limit Claude Code does not enforce)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class _ClaudeCodeSession:
    """One Claude Code session: options, the message loop, and its record in the ledger."""

    def __init__(self, spec: SessionSpec, ledger: Ledger, on_progress: ProgressFn | None):
        self.spec = spec
        self.policy = ToolPolicy(spec.root, spec.role)
        # usage is the running sum of the replies; the final turns, usage and cost come from the result
        self.recorder = SessionRecorder(spec, ledger, on_progress)
        self.external_id: str | None = None
        self.result: Any = None  # claude_agent_sdk.ResultMessage
        self.verdict: dict[str, Any] | None = None
        self.seen_replies: set[str] = set()
        self.pending_tools: dict[str, tuple[str, dict[str, Any], float]] = {}
        self.stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self.cli_path: str | None = None  # the wrapper that starts Claude Code inside the sandbox
        self.transcript: list[dict[str, Any]] = [
            {"role": "system", "content": [{"type": "text", "text": system_prompt_append(spec)}]},
            {"role": "user", "content": [{"type": "text", "text": spec.prompt}]},
        ]

    # -- running --

    def run(self) -> SessionResult:
        self.recorder.start("claude-code", self.spec.model_name or "default")
        budget = min(self.spec.limits.max_cost_usd, self.spec.budget.remaining_usd)
        if budget <= 0:
            return self.finish(
                "limits",
                f"run budget exhausted (${self.spec.budget.spent_usd:.2f} of ${self.spec.budget.limit_usd:.2f} spent)",
                None,
            )
        try:
            stop = asyncio.run(self._run(budget))
        except KeyboardInterrupt:
            self.finish("interrupted", "interrupted by the user", None)
            raise
        except Exception as exc:  # a bug in agentflow, not a backend failure: record it, then surface it
            self.finish("failed", f"internal error: {exc!r}", None)
            raise
        if stop is not None and stop.status == "interrupted":
            self.finish("interrupted", stop.reason, None)
            raise KeyboardInterrupt
        if stop is not None:
            if self.result is None:  # stopped before Claude Code reported its cost: estimate it
                from agentflow.models.pricing import cost_usd

                self.recorder.cost = cost_usd(self.spec.model_name, self.recorder.usage)
            return self.finish(stop.status, stop.reason, None)
        return self.conclude()

    async def _run(self, budget_usd: float) -> _Stop | None:
        """Drive the SDK; a ``_Stop`` describes an end the result message does not report.

        ``ClaudeSDKClient`` as a context manager rather than ``query()``: leaving its block on any
        path (limit, interrupt, error) disconnects, which stops the CLI. Closing the ``query()``
        generator early does not reach the SDK's inner generator, which left the CLI running.
        """
        with tempfile.TemporaryDirectory(prefix="agentflow-cc-") as folder, mount_points_removed(self.spec.root):
            self.cli_path = confined_cli(self.spec.sandbox or Sandbox.from_config(), self.spec.root, Path(folder))
            try:
                return await self._run_confined(budget_usd)
            finally:
                # The SDK waits for its CLI to exit but never closes the process's asyncio transport,
                # which it leaves in a reference cycle: collected after asyncio.run has closed the
                # loop, the transport's __del__ raises "Event loop is closed"; collected here, while
                # the loop runs, it closes quietly.
                gc.collect()

    async def _run_confined(self, budget_usd: float) -> _Stop | None:
        import anyio
        from claude_agent_sdk import ClaudeSDKClient, ClaudeSDKError

        options = self.options(budget_usd)
        seconds = self.spec.limits.max_seconds
        try:
            async with ClaudeSDKClient(options=options) as client:
                try:
                    # anyio, not asyncio.timeout: the SDK's cleanup is shielded from anyio cancellation
                    # only; a raw asyncio cancellation would skip its terminate/kill of the CLI
                    with anyio.fail_after(seconds):
                        await client.query(self.spec.prompt)
                        async for message in client.receive_response():
                            self.on_message(message)
                except BaseException:
                    await _interrupt(client)
                    raise
        except KeyboardInterrupt:  # raised by a callback; the CLI has been stopped by now
            return _Stop("interrupted", "interrupted by the user")
        except _Stop as stop:
            return stop
        except TimeoutError:
            return _Stop("limits", f"time limit reached ({seconds:g} s)")
        except ClaudeSDKError as exc:
            if self.result is not None:  # the SDK may raise after an error result; the result says more
                return None
            return _Stop("failed", f"Claude Code failed: {one_line(str(exc), 500)}{self._stderr_tail()}")
        return None

    def options(self, budget_usd: float) -> Any:
        """The ``ClaudeAgentOptions`` of this session (see the module docstring for the why)."""
        from claude_agent_sdk import ClaudeAgentOptions, HookMatcher, create_sdk_mcp_server

        mcp_servers: dict[str, Any] = {}
        if self.spec.role == "verifier":
            mcp_servers[SERVER_NAME] = create_sdk_mcp_server(SERVER_NAME, tools=[self._verdict_tool()])
        return ClaudeAgentOptions(
            cwd=str(self.spec.root),
            model=self.spec.model_name or None,
            system_prompt={"type": "preset", "preset": "claude_code", "append": system_prompt_append(self.spec)},
            tools=list(self.policy.tools),
            disallowed_tools=list(NETWORK_TOOLS),
            mcp_servers=mcp_servers,
            strict_mcp_config=True,
            permission_mode="dontAsk",  # nothing is asked: the hook allows or refuses every call
            hooks={"PreToolUse": [HookMatcher(matcher=None, hooks=[self._guard])]},
            max_turns=self.spec.limits.max_turns,
            max_budget_usd=round(budget_usd, 4),
            setting_sources=[],
            verbatim_prompts=True,  # an @path in a plan must not make Claude Code read a file
            env={**session_env(), **SCRUB_ENV},
            extra_args={"no-session-persistence": None},
            stderr=self.stderr.append,
            sandbox=bash_sandbox(),  # type: ignore[arg-type]
            cli_path=self.cli_path,
        )

    def _verdict_tool(self) -> Any:
        from claude_agent_sdk import tool
        from pydantic import ValidationError

        from agentflow.verdict import VERDICT_SCHEMA, Verdict

        @tool(
            "submit_verdict",
            "Submit your verdict on the change (DESIGN.md schema). Call it exactly once.",
            VERDICT_SCHEMA,
        )
        async def submit_verdict(args: dict[str, Any]) -> dict[str, Any]:
            if self.verdict is not None:
                return _tool_text("a verdict was already submitted; end the session", is_error=True)
            try:
                verdict = Verdict.model_validate(args)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()[:10]
                )
                return _tool_text(f"invalid verdict ({problems}); fix it and call submit_verdict again", is_error=True)
            self.verdict = verdict.model_dump(mode="json", exclude_none=True)
            return _tool_text("Verdict recorded. Reply with one line and end the session.")

        return submit_verdict

    async def _guard(self, input_data: dict[str, Any], tool_use_id: str | None, context: Any) -> dict[str, Any]:
        """PreToolUse hook: the one place every tool call is allowed or refused."""
        tool_input = input_data.get("tool_input") or {}
        reason = self.policy.refusal(
            str(input_data.get("tool_name", "")), tool_input if isinstance(tool_input, dict) else {}
        )
        decision = (
            {"permissionDecision": "deny", "permissionDecisionReason": reason}
            if reason
            else {"permissionDecision": "allow", "permissionDecisionReason": "allowed by agentflow's policy"}
        )
        return {"hookSpecificOutput": {"hookEventName": "PreToolUse", **decision}}

    # -- recording --

    def on_message(self, message: Any) -> None:
        from claude_agent_sdk import AssistantMessage, ResultMessage, SystemMessage, UserMessage

        self.transcript.append(transcript_entry(message))
        if isinstance(message, SystemMessage) and message.subtype == "init":
            self.external_id = message.data.get("session_id") or self.external_id
        elif isinstance(message, AssistantMessage):
            self.on_reply(message)
        elif isinstance(message, UserMessage):
            self.on_tool_results(message)
        elif isinstance(message, ResultMessage):
            self.result = message
            self.external_id = message.session_id or self.external_id

    def on_reply(self, message: Any) -> None:
        """One API reply can arrive as several messages (one per block) sharing a message id."""
        from claude_agent_sdk import ToolUseBlock

        recorder = self.recorder
        if message.model != "<synthetic>" and message.message_id not in self.seen_replies:
            self.seen_replies.add(message.message_id)
            recorder.turns += 1
            recorder.record_model_call(message.model, _usage(message.usage), stop_reason=message.stop_reason)
            recorder.save_transcript(self.transcript)
            recorder.progress()
            if recorder.usage.total > self.spec.limits.max_tokens:
                raise _Stop("limits", f"token limit reached ({recorder.usage.total} of {self.spec.limits.max_tokens})")
        for block in message.content:
            if isinstance(block, ToolUseBlock):
                self.pending_tools[block.id] = (block.name, dict(block.input), time.monotonic())
                recorder.progress(tool=block.name)

    def on_tool_results(self, message: Any) -> None:
        from claude_agent_sdk import ToolResultBlock

        if not isinstance(message.content, list):
            return
        for block in message.content:
            if not isinstance(block, ToolResultBlock) or block.tool_use_id not in self.pending_tools:
                continue
            name, tool_input, began = self.pending_tools.pop(block.tool_use_id)
            content = block.content if isinstance(block.content, str) else str(block.content or "")
            self.recorder.record_tool_call(
                name,
                tool_input,
                is_error=bool(block.is_error),
                output_chars=len(content),
                duration_s=time.monotonic() - began,
            )

    # -- ending --

    def conclude(self) -> SessionResult:
        """The session's status from the result message: anything but a clean result is not success."""
        result = self.result
        if result is None:
            return self.finish("failed", f"Claude Code ended without a result{self._stderr_tail()}", None)
        recorder = self.recorder
        recorder.cost = float(result.total_cost_usd or 0.0)
        if result.usage:
            recorder.usage = _usage(result.usage)
        recorder.turns = max(recorder.turns, int(result.num_turns or 0))
        if result.is_error or result.subtype != "success":
            status, reason = _error_reason(result, self.spec.limits.max_turns)
            return self.finish(status, reason, None)
        if self.spec.role == "verifier":
            if self.verdict is None:
                return self.finish(
                    "failed", f"the verifier ended without submitting a verdict through {VERDICT_TOOL}", None
                )
            return self.finish("completed", None, self.verdict)
        return self.finish("completed", None, {"summary": (result.result or "").strip() or "(no summary)"})

    def finish(self, status: str, reason: str | None, submitted: dict[str, Any] | None) -> SessionResult:
        """Replies carry no cost, so the recorder charges the run budget here with what Claude Code reported."""
        summary = submitted_summary(submitted)
        return self.recorder.finish(
            status,
            reason,
            submitted,  # type: ignore[arg-type]
            summary=summary[:MAX_EVENT_STRING] if summary is not None else None,
            transcript=self.transcript,
            external_id=self.external_id,
        )

    def _stderr_tail(self) -> str:
        lines = [line for line in self.stderr if line.strip()]
        return f" (stderr: {one_line(' | '.join(lines[-3:]), 500)})" if lines else ""


def run_claude_code_session(spec: SessionSpec, ledger: Ledger, on_progress: ProgressFn | None = None) -> SessionResult:
    """Run one builder or verifier session in Claude Code; never raises for backend failures.

    ``UsageError`` when the extra is not installed or the role is not supported (before anything
    is recorded); otherwise a ``SessionResult`` whose status is ``completed`` only for a clean
    Claude Code result (and, for a verifier, a valid verdict).
    """
    ensure_available()
    if spec.role not in ("builder", "verifier"):
        raise UsageError(
            f"the claude-code backend runs builder and verifier sessions, not {spec.role!r}",
            fix=f"set models.{spec.role}.backend to anthropic or scripted in agentflow.yaml",
        )
    if spec.sandbox is None:
        spec = dataclasses.replace(spec, sandbox=Sandbox.from_config())  # mode auto: fails closed, exit 2
    if spec.sandbox.mode == "bwrap":
        require_nested(spec.sandbox.bwrap)  # Claude Code's Bash sandbox starts inside ours, or nothing does
    return _ClaudeCodeSession(spec, ledger, on_progress).run()


# -- helpers --------------------------------------------------------------------------------------


async def _interrupt(client: Any) -> None:
    """Stop the turn Claude Code is running before disconnecting: closing its input alone lets the
    turn (and its model calls) go on during the SDK's grace period."""
    import anyio

    with anyio.move_on_after(5, shield=True), contextlib.suppress(Exception):
        await client.interrupt()


def _error_reason(result: Any, max_turns: int) -> tuple[str, str]:
    """Status and reason of an error result; limits Claude Code enforced are ``limits``."""
    if result.subtype == "error_max_turns":
        return "limits", f"turn limit reached ({max_turns} turns, Claude Code stopped the session)"
    if result.subtype == "error_max_budget_usd":
        return "limits", f"budget reached (${float(result.total_cost_usd or 0):.4f} spent)"
    detail = result.result or "; ".join(result.errors or []) or "no detail"
    status = f", HTTP {result.api_error_status}" if result.api_error_status else ""
    return "failed", f"Claude Code error ({result.subtype}{status}): {one_line(detail, 500)}"


def _usage(data: dict[str, Any] | None) -> Usage:
    data = data or {}

    def count(key: str) -> int:
        value = data.get(key)
        return int(value) if isinstance(value, int | float) else 0

    return Usage(
        input_tokens=count("input_tokens"),
        output_tokens=count("output_tokens"),
        cache_read=count("cache_read_input_tokens"),
        cache_write=count("cache_creation_input_tokens"),
    )


def _tool_text(text: str, *, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "is_error": is_error}


BLOCK_TYPES = {
    "TextBlock": "text",
    "ToolUseBlock": "tool_use",
    "ToolResultBlock": "tool_result",
    "ThinkingBlock": "thinking",
}
ENTRY_ROLES = {
    "AssistantMessage": "assistant",
    "UserMessage": "user",
    "SystemMessage": "system",
    "ResultMessage": "result",
}


def transcript_entry(message: Any) -> dict[str, Any]:
    """An SDK message as a transcript entry in the Messages API shape the other backends save
    (``role`` + typed ``content`` blocks), with the SDK's other fields alongside."""
    kind = type(message).__name__
    data = _asdict(message)
    entry: dict[str, Any] = {"role": ENTRY_ROLES.get(kind, "event"), "sdk_type": kind}
    content = getattr(message, "content", None)
    if isinstance(content, list):
        entry["content"] = [_block(block) for block in content]
    elif isinstance(content, str):
        entry["content"] = [{"type": "text", "text": content}]
    elif kind == "ResultMessage":
        entry["content"] = [{"type": "text", "text": message.result or message.subtype}]
    elif kind == "SystemMessage":
        entry["content"] = [{"type": "text", "text": f"[{message.subtype}]"}]
    entry.update({k: v for k, v in data.items() if k != "content"})
    return entry


def _block(block: Any) -> dict[str, Any]:
    return {"type": BLOCK_TYPES.get(type(block).__name__, type(block).__name__), **_asdict(block)}


def _asdict(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return {"repr": repr(value)}
