"""The HTML reports rendered by a real browser (headless Chromium) through scripts/render_report.sh.

The HTML content itself is checked without a browser in test_metrics.py and test_show.py; this
test adds that a browser lays the pages out and builds the charts. Without Chromium it skips on a
developer's machine and fails under CI=true (.ci/run installs it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import need_tool

ROOT = Path(__file__).resolve().parents[1]


def test_render_report_script_renders_both_pages(tmp_path: Path) -> None:
    need_tool("chromium", "chromium-browser", "google-chrome")
    out = tmp_path / "render"
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "render_report.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok: metrics page rendered with 4 SVG charts" in proc.stdout
    for page in ("metrics", "show"):
        png = (out / f"{page}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    dom = (out / "metrics.dom.html").read_text()
    assert "capsule-isolation" in dom and "$5.95" in dom
