"""Code that runs on the next build, or when an IDE opens the tree: like npm's ``postinstall``.

* ``package.json5`` (pnpm reads it where there is no ``package.json``) is read line by line (no JSON5
  parser here), so an install script written otherwise passed: a comment before the key, a key
  spelled with an escape (``'\\u0070ostinstall'``), npm's ``dependencies`` lifecycle script (not
  matched by line: the word is every manifest's dependency table). A pull request adding one was
  approved (tested before the fix). Every added or changed ``package.json5`` is now a finding (high).
* Cargo runs a package's build script (``build.rs`` next to its ``Cargo.toml``, or the file its
  ``build`` key names) before compiling it, and rust-analyzer does so when an editor opens the tree;
  Gradle runs ``settings.gradle``, ``build.gradle`` and every other ``*.gradle(.kts)`` script, and
  compiles and runs ``buildSrc/``, on every build and when an IDE syncs the project (IntelliJ reloads
  it after a checkout). A change to them was no finding; now each is an ``autorun_file`` finding (high,
  as for ``gradle/wrapper/`` and ``.cargo/config.toml``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.build_helpers import notes
from tests.helpers import git
from tests.test_attacks_autorun_files import pull_request, verify

CARGO = '[package]\nname = "x"\nversion = "0.1.0"\nedition = "2021"\n'
PAYLOAD = 'fn main() { std::process::Command::new("sh").arg("tools/setup.sh").status().unwrap(); }\n'


def _base(repo: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")


def _hits(data: dict) -> list[tuple[str, str]]:
    return sorted((f["file"], f["severity"]) for f in data["findings"] if f.get("pattern") == "autorun_file")


@pytest.mark.parametrize(
    "change",
    [
        "{\n  name: 'x',\n  scripts: {\n    /* setup */ postinstall: 'sh tools/setup.sh',\n  },\n}\n",
        "{\n  name: 'x',\n  scripts: {\n    '\\u0070ostinstall': 'sh tools/setup.sh',\n  },\n}\n",
        "{\n  name: 'x',\n  scripts: {\n    \\u0070repare: 'sh tools/setup.sh',\n  },\n}\n",
        "{\n  name: 'x',\n  scripts: {\n    dependencies: 'sh tools/setup.sh',\n  },\n}\n",
    ],
)
def test_an_install_script_in_package_json5_written_otherwise_is_not_approved(repo: Path, cli, change: str) -> None:
    _base(repo, {"package.json5": "{name: 'x'}\n"})
    head = pull_request(repo, {"package.json5": change})

    code, data = verify(repo, cli)

    assert code == 1 and _hits(data) == [("package.json5", "high")], data["findings"]
    assert all(n["outcome"] != "approved" for n in notes(repo, head))


@pytest.mark.parametrize(
    ("base", "files", "expected"),
    [
        ({"Cargo.toml": CARGO}, {"build.rs": PAYLOAD}, ["build.rs"]),
        ({"crates/x/Cargo.toml": CARGO, "crates/x/build.rs": "fn main() {}\n"}, {"crates/x/build.rs": PAYLOAD},
         ["crates/x/build.rs"]),
        ({"Cargo.toml": CARGO}, {"Cargo.toml": CARGO + 'build = "tools/gen.rs"\n', "tools/gen.rs": PAYLOAD},
         ["Cargo.toml", "tools/gen.rs"]),
        ({"Cargo.toml": CARGO + 'build = "tools/gen.rs"\n', "tools/gen.rs": "fn main() {}\n"},
         {"tools/gen.rs": PAYLOAD}, ["tools/gen.rs"]),
        ({}, {"settings.gradle": "exec { commandLine 'sh', 'tools/setup.sh' }\n"}, ["settings.gradle"]),
        ({"build.gradle.kts": "plugins { java }\n"},
         {"build.gradle.kts": 'plugins { java }\nexec { commandLine("sh", "tools/setup.sh") }\n'}, ["build.gradle.kts"]),
        ({}, {"app/build.gradle": "apply from: '../gradle/publish.gradle'\n"}, ["app/build.gradle"]),
        ({}, {"gradle/publish.gradle": "'sh tools/setup.sh'.execute()\n"}, ["gradle/publish.gradle"]),
        ({}, {"buildSrc/src/main/kotlin/Setup.kt": 'val x = ProcessBuilder("sh", "tools/setup.sh").start()\n'},
         ["buildSrc/src/main/kotlin/Setup.kt"]),
    ],
)  # fmt: skip
def test_a_build_script_added_or_changed_is_not_approved(
    repo: Path, cli, base: dict[str, str], files: dict[str, str], expected: list[str]
) -> None:
    if base:
        _base(repo, base)
    head = pull_request(repo, files)

    code, data = verify(repo, cli)

    assert code == 1 and _hits(data) == [(path, "high") for path in expected], data["findings"]
    assert all(n["outcome"] != "approved" for n in notes(repo, head))


@pytest.mark.parametrize(
    ("base", "files"),
    [
        ({"Cargo.toml": CARGO}, {"src/bin/build.rs": PAYLOAD}),  # a binary named build: no build script
        ({}, {"build.rs": PAYLOAD}),  # no Cargo.toml beside it
        ({"Cargo.toml": CARGO}, {"Cargo.toml": CARGO.replace("0.1.0", "0.2.0")}),  # the build key untouched
        ({"Cargo.toml": CARGO + "build = false\n", "build.rs": "fn main() {}\n"}, {"build.rs": PAYLOAD}),
        ({}, {"gradle/libs.versions.toml": '[versions]\nkotlin = "2.0.0"\n'}),  # data, not a script
        ({"package.json5": "{name: 'x'}\n"}, {"package.json": '{"name": "y"}\n'}),  # package.json5 untouched
    ],
)  # fmt: skip
def test_what_runs_no_build_code_is_no_finding(repo: Path, cli, base: dict[str, str], files: dict[str, str]) -> None:
    if base:
        _base(repo, base)
    pull_request(repo, files)

    code, data = verify(repo, cli)

    assert _hits(data) == [], data["findings"]
    assert code == 0
