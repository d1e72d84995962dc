#!/usr/bin/env bash
# Render agentflow's HTML reports in headless Chromium and save screenshots, to check by eye that
# they read well (layout, charts, tables) and by machine that the browser built the four charts.
#
# usage: scripts/render_report.sh [OUT_DIR] [REPO]
#
#   OUT_DIR  where metrics.html, metrics.png, show.html, show.png go (default: ./report-render)
#   REPO     a repository with an agentflow ledger; the report covers its last 30 days.
#            Without REPO the script builds the hand-worked sample history the tests use
#            (tests/metrics_helpers.py) in a temporary repository and reports on 16-22 Nov 2026.
#
# Needs chromium (Debian/Ubuntu: apt-get install -y chromium). Exit 0 when both pages rendered
# and the metrics page has its four SVG charts and its figures table; 1 otherwise; 2 when
# chromium is missing.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-report-render}" && cd "${1:-report-render}" && pwd)"
repo="${2:-}"
python="${PYTHON:-$here/../venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
agentflow=("$python" -m agentflow)

browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
    echo "render_report: chromium is not installed (apt-get install -y chromium)" >&2
    exit 2
fi

if [ -z "$repo" ]; then
    repo="$(mktemp -d)/sample"
    mkdir -p "$repo"
    git -C "$repo" init -q -b main
    git -C "$repo" config user.email dev@example.com
    git -C "$repo" config user.name Dev
    echo "# sample" > "$repo/README.md"
    git -C "$repo" add README.md
    git -C "$repo" commit -q -m initial
    PYTHONPATH="$here/tests" "$python" -c "import sys; from pathlib import Path; \
from metrics_helpers import build_history; build_history(Path(sys.argv[1]))" "$repo"
    period=(--since 2026-11-16 --until 2026-11-22)
    run="r-102a"
else
    period=(--since 30d)
    run="$(cd "$repo" && "$python" -c "from agentflow.ledger import Ledger; from pathlib import Path; \
ids = Ledger.open(Path('.')).run_ids(); print(ids[-1] if ids else '')")"
fi

(cd "$repo" && "${agentflow[@]}" metrics "${period[@]}" --format html --output "$out/metrics.html")
if [ -n "$run" ]; then
    (cd "$repo" && "${agentflow[@]}" show "$run" --format html --transcripts --output "$out/show.html")
fi

shoot() {  # shoot PAGE WIDTH HEIGHT
    "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
        --window-size="$2,$3" --screenshot="$out/$1.png" "file://$out/$1.html" >/dev/null 2>&1
    "$browser" --headless=new --no-sandbox --disable-gpu --dump-dom "file://$out/$1.html" 2>/dev/null >"$out/$1.dom.html"
    echo "rendered $out/$1.png"
}

shoot metrics 1280 2700
[ -f "$out/show.html" ] && shoot show 1280 2000

svgs="$(grep -o '<svg' "$out/metrics.dom.html" | wc -l)"
if ! grep -q 'id="figures"' "$out/metrics.dom.html" || [ "$svgs" -lt 4 ]; then
    echo "render_report: the rendered metrics page lacks its figures table or charts ($svgs SVGs)" >&2
    exit 1
fi
echo "ok: metrics page rendered with $svgs SVG charts and the figures table"
