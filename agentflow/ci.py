"""CI files ``agentflow init --ci`` writes: the GitHub workflow (pull requests and the merge queue),
the fan-out workflow (one runner per plan) and ``.gitlab-ci.yml``, each pinned to an exact agentflow.

agentflow is never installed by bare package name: the name ``agentflow`` on the package index is an
unrelated project, and running it in a job that holds the API and signing keys hands them to a
stranger. The pin comes from ``--action OWNER/REPO@REF`` (the composite action in this repository's
``action.yml``), else from how the running agentflow was installed (PEP 610 ``direct_url.json``: a
VCS URL and a commit), else from ``--install SPEC`` (a VCS URL with a commit, a file, or
``name==version``); without any of them init stops and asks for one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agentflow.errors import UsageError

CI_PROVIDERS = ("github", "gitlab")
WORKFLOW_PATH = ".github/workflows/agentflow.yml"
FANOUT_PATH = ".github/workflows/agentflow-fanout.yml"
GITLAB_PATH = ".gitlab-ci.yml"
DEFAULT_MAX_PARALLEL = 4
_ACTION = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+)@([A-Za-z0-9._/-]+)$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_ASK = "pass --action OWNER/REPO@REF (this repository's action.yml at a tag or commit) or --install SPEC"


@dataclass(frozen=True)
class Pin:
    """Where CI gets agentflow from: the composite action at an exact ref, or a pip requirement."""

    action: str | None = None  # OWNER/REPO@REF
    install: str | None = None  # a pinned pip requirement

    @property
    def spec(self) -> str:
        """A pip requirement for jobs that only need the command (matrix, report, GitLab)."""
        if self.install:
            return self.install
        assert self.action is not None
        repo, ref = self.action.split("@", 1)
        return f"git+https://github.com/{repo}@{ref}"


def parse_action(value: str) -> Pin:
    match = _ACTION.match(value.strip())
    if not match:
        raise UsageError(f"--action {value}: not OWNER/REPO@REF", fix="e.g. --action acme/agentflow@v0.1.0")
    return Pin(action=value.strip())


def parse_install(value: str) -> Pin:
    """A pip requirement that names exactly one build of agentflow; anything that floats is refused."""
    spec = value.strip()
    fix = "give a VCS URL with a commit (git+https://host/org/agentflow@<40-hex sha>), a wheel or sdist file, or NAME==VERSION"
    vcs = re.match(r"^(?:[A-Za-z0-9._-]+\s*@\s*)?git\+\S+@([0-9a-f]{40})(?:#\S*)?$", spec)
    if vcs:
        return Pin(install=spec)
    if spec.startswith("git+") or " @ git+" in spec:
        raise UsageError(f"--install {value}: a VCS URL must end in @<commit sha> (a branch or tag can move)", fix=fix)
    if re.search(r"\.(whl|tar\.gz|zip)$", spec) and not re.match(r"^[A-Za-z0-9._-]+\s*(==|>=|<=|~=|>|<|!=)", spec):
        if not _outside_checkout(spec):
            raise UsageError(
                f"--install {value}: a relative path is a file of the checkout the job installs in, the pull "
                "request's to replace",
                fix="give the file's absolute path outside the repository (or a URL), a VCS URL with a commit, "
                "or NAME==VERSION",
            )
        return Pin(install=spec)
    if re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[0-9][A-Za-z0-9.+!-]*$", spec):
        return Pin(install=spec)
    raise UsageError(
        f"--install {value}: not a pinned requirement (a bare or ranged name installs whatever the index has)", fix=fix
    )


def _outside_checkout(spec: str) -> bool:
    """Whether a file requirement names a place a change cannot write: an absolute path or a URL. The
    jobs run pip in the change's checkout, where a relative path (``./dist/x.whl``, ``file:x.whl``,
    ``name @ ./x.whl``) is the change's file (tests/test_attacks_ci_install.py)."""
    location = re.sub(r"^[A-Za-z0-9._-]+\s*@\s*", "", spec)
    if location.startswith("file:"):
        return location.startswith("file:///") or location.startswith("file://localhost/")
    return location.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location) is not None


def installed_pin() -> Pin | None:
    """The running agentflow's own source when pip recorded one (PEP 610): a VCS URL and commit."""
    from importlib import metadata

    try:
        raw = metadata.distribution("agentflow").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return None
    vcs = data.get("vcs_info") or {}
    url, commit = str(data.get("url", "")), str(vcs.get("commit_id", ""))
    if vcs.get("vcs") != "git" or not _SHA.match(commit) or not url:
        return None
    github = re.match(r"^(?:https://|ssh://git@|git@)github\.com[/:]([^/]+)/([^/]+?)(?:\.git)?/?$", url)
    if github:
        return Pin(action=f"{github.group(1)}/{github.group(2)}@{commit}")
    return Pin(install=f"git+{url}@{commit}")


def resolve_pin(action: str | None, install: str | None) -> Pin:
    if action and install:
        raise UsageError("--action and --install both say where agentflow comes from", fix="give one of them")
    if action:
        return parse_action(action)
    if install:
        return parse_install(install)
    pin = installed_pin()
    if pin is None:
        raise UsageError("cannot tell which agentflow the CI job should run (no pinned install found)", fix=_ASK)
    return pin


# -- GitHub: pull requests and the merge queue ------------------------------------------------------------

_GITHUB_HEADER = """\
# Written by `agentflow init --ci github`. Require the "agentflow" check in the branch protection
# (or ruleset) of your default branch; with a merge queue, the same check runs on each merge group
# (docs/ci.md). agentflow comes from {source}: never a bare package name.
name: agentflow

on:
  pull_request:
  merge_group:

permissions:
  contents: read
  security-events: write         # upload the SARIF report to code scanning

jobs:
  agentflow:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          # the pull request's head, not a merge commit: the verdict is bound to the head's tree;
          # in the merge queue, the merge group's commit: what will land
          ref: ${{{{ github.event.pull_request.head.sha || github.sha }}}}
          fetch-depth: 0                 # full history: base, trailers, patch ids
"""

# Around both workflows' Verify step: a committed agentflow.sarif (a link to a file of the runner)
# is removed first and never uploaded; only a regular file Verify wrote is (docs/security.md).
_SARIF_BEFORE_VERIFY = """\
      - name: Remove the report path the change may have committed
        if: github.event_name == 'pull_request'
        # a committed agentflow.sarif (a link to a file of the runner) is never what gets uploaded
        run: rm -rf -- agentflow.sarif
"""

_SARIF_AFTER_VERIFY = """\
      - name: Keep only a report agentflow wrote
        id: report
        if: always() && (steps.verify.outcome == 'success' || steps.verify.outcome == 'failure')
        run: |
          if [ -f agentflow.sarif ] && [ ! -L agentflow.sarif ]; then
            echo "sarif=true" >> "$GITHUB_OUTPUT"
          fi
      - name: Upload SARIF
        if: always() && steps.report.outputs.sarif == 'true'
        uses: github/codeql-action/upload-sarif@v3
        with:
          sarif_file: agentflow.sarif
"""

_GITHUB_ACTION_STEPS = (
    _SARIF_BEFORE_VERIFY
    + """\
      - name: Verify
        id: verify
        if: github.event_name == 'pull_request'
        uses: {action}
        env:
          ANTHROPIC_API_KEY: ${{{{ secrets.ANTHROPIC_API_KEY }}}}
          AGENTFLOW_SIGNING_KEY: ${{{{ secrets.AGENTFLOW_SIGNING_KEY }}}}
        with:
          command: verify
          base: origin/${{{{ github.base_ref }}}}
          sarif: agentflow.sarif
"""
    + _SARIF_AFTER_VERIFY
    + """\
      - name: Gate
        if: github.event_name == 'pull_request'
        uses: {action}
        env:
          AGENTFLOW_SIGNING_KEY: ${{{{ secrets.AGENTFLOW_SIGNING_KEY }}}}
        with:
          command: gate
          base: origin/${{{{ github.base_ref }}}}
      - name: Merge queue - checks on the merge result
        if: github.event_name == 'merge_group'
        uses: {action}
        with:
          command: verify
          base: ${{{{ github.event.merge_group.base_sha }}}}
          args: --checks-only
      - name: Merge queue - gate
        if: github.event_name == 'merge_group'
        uses: {action}
        env:
          AGENTFLOW_SIGNING_KEY: ${{{{ secrets.AGENTFLOW_SIGNING_KEY }}}}
        with:
          command: gate
          base: ${{{{ github.event.merge_group.base_sha }}}}
"""
)

_SANDBOX_STEP = """\
      - name: Prepare the sandbox (bubblewrap, unprivileged user namespaces)
        run: |
          if ! command -v bwrap >/dev/null 2>&1 || ! command -v socat >/dev/null 2>&1; then
            sudo apt-get update -qq
            sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap socat
          fi
          if [ -e /proc/sys/kernel/apparmor_restrict_unprivileged_userns ]; then
            sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0
          fi
"""

_INSTALL_STEPS = """\
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install agentflow (pinned)
        env:
          AGENTFLOW_SPEC: {spec}
        run: python3 -I -m pip install "$AGENTFLOW_SPEC"
"""

_GITHUB_INSTALL_STEPS = (
    _INSTALL_STEPS
    + _SANDBOX_STEP
    + """\
      - name: Fetch verdict notes
        run: agentflow notes fetch
"""
    + _SARIF_BEFORE_VERIFY
    + """\
      - name: Verify
        id: verify
        if: github.event_name == 'pull_request'
        env:
          ANTHROPIC_API_KEY: ${{{{ secrets.ANTHROPIC_API_KEY }}}}
          AGENTFLOW_SIGNING_KEY: ${{{{ secrets.AGENTFLOW_SIGNING_KEY }}}}
          BASE_REF: origin/${{{{ github.base_ref }}}}
        # one verification: annotations and job summary on stdout, the same verdict as SARIF
        run: agentflow verify --base "$BASE_REF" --format github --sarif agentflow.sarif
"""
    + _SARIF_AFTER_VERIFY
    + """\
      - name: Gate
        if: github.event_name == 'pull_request'
        env:
          AGENTFLOW_SIGNING_KEY: ${{{{ secrets.AGENTFLOW_SIGNING_KEY }}}}
          BASE_REF: origin/${{{{ github.base_ref }}}}
        run: agentflow gate HEAD --base "$BASE_REF" --format github
      - name: Merge queue - checks on the merge result
        if: github.event_name == 'merge_group'
        env:
          QUEUE_BASE: ${{{{ github.event.merge_group.base_sha }}}}
        run: agentflow verify --checks-only --base "$QUEUE_BASE" --format github
      - name: Merge queue - gate
        if: github.event_name == 'merge_group'
        env:
          AGENTFLOW_SIGNING_KEY: ${{{{ secrets.AGENTFLOW_SIGNING_KEY }}}}
          QUEUE_BASE: ${{{{ github.event.merge_group.base_sha }}}}
        run: agentflow gate HEAD --base "$QUEUE_BASE" --format github
"""
)


def _yaml_scalar(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _source(pin: Pin) -> str:
    return f"the action {pin.action}" if pin.action else f"the pinned requirement {pin.install}"


def github_workflow(pin: Pin) -> str:
    header = _GITHUB_HEADER.format(source=_source(pin))
    if pin.action:
        return header + _GITHUB_ACTION_STEPS.format(action=pin.action)
    return header + _GITHUB_INSTALL_STEPS.format(spec=_yaml_scalar(pin.spec))


# -- GitHub: fan-out, one runner per plan ------------------------------------------------------------------

_FANOUT = """\
# Written by `agentflow init --ci github --fanout`. Builds every ready plan that has no run yet, one
# runner per plan (at most {max_parallel} at once), pushes each plan branch with its verdict notes, and
# gathers every runner's ledger into one metrics report in the run's summary. Start it by hand
# (Actions > agentflow-fanout > Run workflow). agentflow comes from {source}.
name: agentflow-fanout

on:
  workflow_dispatch:

permissions:
  contents: read

jobs:
  plans:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{{{ steps.list.outputs.matrix }}}}
    steps:
      - uses: actions/checkout@v4
{install}      - name: List the plans to build
        id: list
        run: echo "matrix=$(agentflow plan list --json --status ready --unbuilt)" >> "$GITHUB_OUTPUT"

  build:
    needs: plans
    if: needs.plans.outputs.matrix != '[]'
    runs-on: ubuntu-latest
    permissions:
      contents: write              # push the plan branch and its notes
    strategy:
      fail-fast: false
      max-parallel: {max_parallel}
      matrix:
        plan: ${{{{ fromJSON(needs.plans.outputs.matrix) }}}}
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - name: Skip a plan whose branch is on the remote already
        id: seen
        env:
          BRANCH: ${{{{ matrix.plan.branch }}}}
        run: |
          if git ls-remote --exit-code --heads origin "refs/heads/$BRANCH" >/dev/null; then
            echo "::notice title=agentflow::$BRANCH is on the remote already: built before, skipped"
            echo "built=true" >> "$GITHUB_OUTPUT"
          fi
{build}      - name: Push the plan branch and its verdict notes
        if: always() && steps.seen.outputs.built != 'true'
        env:
          BRANCH: ${{{{ matrix.plan.branch }}}}
        run: |
          if git rev-parse --verify --quiet "refs/heads/$BRANCH" >/dev/null; then
            git push origin "refs/heads/$BRANCH:refs/heads/$BRANCH"
            agentflow notes push
          fi
      - name: Export this runner's ledger
        if: always()
        env:
          PLAN_ID: ${{{{ matrix.plan.id }}}}
          RUN_ID: ${{{{ steps.build.outputs.run-id }}}}
        run: |
          if [ -n "$RUN_ID" ]; then
            agentflow ledger export --run "$RUN_ID" -o "ledger-$PLAN_ID.jsonl"
          fi
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: ledger-${{{{ matrix.plan.id }}}}
          path: ledger-${{{{ matrix.plan.id }}}}.jsonl
          if-no-files-found: ignore

  report:
    needs: build
    if: always() && needs.build.result != 'skipped'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
{install}      - uses: actions/download-artifact@v4
        with:
          pattern: ledger-*
          path: ledgers
          merge-multiple: true
      - name: Metrics report
        run: |
          shopt -s nullglob
          files=(ledgers/*.jsonl)
          if [ ${{#files[@]}} -gt 0 ]; then
            agentflow ledger import "${{files[@]}}"
          fi
          agentflow metrics --format md >> "$GITHUB_STEP_SUMMARY"
"""

_FANOUT_BUILD_ACTION = """\
      - name: Build the plan
        id: build
        if: steps.seen.outputs.built != 'true'
        uses: {action}
        env:
          ANTHROPIC_API_KEY: ${{{{ secrets.ANTHROPIC_API_KEY }}}}
          AGENTFLOW_SIGNING_KEY: ${{{{ secrets.AGENTFLOW_SIGNING_KEY }}}}
        with:
          command: build
          plan: ${{{{ matrix.plan.path }}}}
"""

_FANOUT_BUILD_INSTALL = (
    _INSTALL_STEPS
    + _SANDBOX_STEP
    + """\
      - name: Fetch verdict notes
        run: agentflow notes fetch
      - name: Build the plan
        id: build
        if: steps.seen.outputs.built != 'true'
        env:
          ANTHROPIC_API_KEY: ${{{{ secrets.ANTHROPIC_API_KEY }}}}
          AGENTFLOW_SIGNING_KEY: ${{{{ secrets.AGENTFLOW_SIGNING_KEY }}}}
          PLAN_PATH: ${{{{ matrix.plan.path }}}}
          PLAN_ID: ${{{{ matrix.plan.id }}}}
        run: |
          code=0
          agentflow build "$PLAN_PATH" || code=$?
          run_id=$(agentflow status --json | python3 -I -c 'import json, sys; rows = [r for r in json.load(sys.stdin) if r["id"] == sys.argv[1]]; print(rows[0]["last_run"] or "" if rows else "")' "$PLAN_ID")
          echo "run-id=$run_id" >> "$GITHUB_OUTPUT"
          exit "$code"
"""
)


def fanout_workflow(pin: Pin, max_parallel: int = DEFAULT_MAX_PARALLEL) -> str:
    if max_parallel < 1:
        raise UsageError(f"--max-parallel {max_parallel}: must be at least 1", fix="e.g. --max-parallel 4")
    install = _INSTALL_STEPS.format(spec=_yaml_scalar(pin.spec))
    if pin.action:
        build = _FANOUT_BUILD_ACTION.format(action=pin.action)
    else:
        build = _FANOUT_BUILD_INSTALL.format(spec=_yaml_scalar(pin.spec))
    return _FANOUT.format(max_parallel=max_parallel, source=_source(pin), install=install, build=build)


# -- GitLab ----------------------------------------------------------------------------------------------------

_GITLAB = """\
# Written by `agentflow init --ci gitlab`. Make pipelines required ("Pipelines must succeed") so the
# gate blocks unapproved merges. ANTHROPIC_API_KEY and AGENTFLOW_SIGNING_KEY: masked, protected CI/CD
# variables. agentflow comes from {source}: never a bare package name.
stages:
  - verify

agentflow:
  stage: verify
  image: python:3.12
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  variables:
    GIT_DEPTH: "0"                   # full history: base, trailers, patch ids
    AGENTFLOW_SPEC: {spec}
    BASE_REF: origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME
  before_script:
    - apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap socat
    - python3 -I -m pip install "$AGENTFLOW_SPEC"
    - git fetch -q origin "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
    # the merge request's head, not a merged result: the verdict is bound to the head's tree
    - git checkout -q --detach "${{CI_MERGE_REQUEST_SOURCE_BRANCH_SHA:-$CI_COMMIT_SHA}}"
    - agentflow notes fetch
  script:
    # the change may have committed these paths as links to host files: the shell's `>` follows them
    - rm -f agentflow-junit.xml agentflow.sarif gl-code-quality-report.json
    # verify records the verdict; the gate below decides (a failed verify leaves it closed)
    - agentflow verify --base "$BASE_REF" --junit agentflow-junit.xml --sarif agentflow.sarif || true
    - agentflow gate HEAD --base "$BASE_REF" || true   # the reasons, in the job log
    # writes the report and exits 1 when the gate is closed: the job fails after the report exists
    - agentflow gate HEAD --base "$BASE_REF" --format codequality > gl-code-quality-report.json
  artifacts:
    when: always
    paths:
      - agentflow.sarif
    reports:
      codequality: gl-code-quality-report.json
      junit: agentflow-junit.xml
"""


def gitlab_ci(pin: Pin) -> str:
    return _GITLAB.format(source=_source(pin), spec=_yaml_scalar(pin.spec))


def ci_files(
    provider: str,
    *,
    action: str | None = None,
    install: str | None = None,
    fanout: bool = False,
    max_parallel: int = DEFAULT_MAX_PARALLEL,
) -> list[tuple[str, str]]:
    """``(path, text)`` of every CI file for ``provider``; raises ``UsageError`` without a pin."""
    if provider not in CI_PROVIDERS:
        raise UsageError(f"unknown CI provider {provider!r}", fix=f"use one of: {', '.join(CI_PROVIDERS)}")
    if fanout and provider != "github":
        raise UsageError("--fanout writes a GitHub Actions workflow", fix="use it with --ci github")
    pin = resolve_pin(action, install)
    if provider == "gitlab":
        return [(GITLAB_PATH, gitlab_ci(pin))]
    files = [(WORKFLOW_PATH, github_workflow(pin))]
    if fanout:
        files.append((FANOUT_PATH, fanout_workflow(pin, max_parallel)))
    return files
