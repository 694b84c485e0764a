#!/usr/bin/env bash
# The main job, from a fresh machine: install sitebeacon into .venv, build the sample site
# (Markdown -> HTML with the client module injected), start the receiver serving that site on the
# same origin, and print every record as the receiver stores it. Open the printed address, click
# a link: the page view, the leave (with visible time) and outbound clicks appear below.
# On a machine without a screen, `bash scripts/demo.sh --click` lets headless Chromium be the
# reader: it opens the index, clicks a post, closes the tab, and the demo stops after printing.
# Environment: PORT (default 8787), DB (default sqlite:///demo.db).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8787}
db=${DB:-sqlite:///demo.db}

if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install -q -e '.[verify]'
.venv/bin/sitebeacon build sample_site
.venv/bin/sitebeacon receive --db "$db" --port "$port" --site sample_site/_site &
receiver=$!
trap 'kill "$receiver" 2>/dev/null; wait "$receiver" 2>/dev/null' EXIT INT TERM

echo
echo "Open http://127.0.0.1:$port/ in a browser and click a link (Ctrl-C to stop)."
echo "Stored records (sitebeacon export --db $db):"
seen=0
rounds=-1
if [ "${1:-}" = "--click" ]; then
  .venv/bin/python scripts/demo_click.py "http://127.0.0.1:$port"
  rounds=3
fi
while [ "$rounds" -ne 0 ] && kill -0 "$receiver" 2>/dev/null; do
  sleep 1
  lines=$(.venv/bin/sitebeacon export --db "$db" 2>/dev/null || true)
  count=$(printf '%s' "$lines" | grep -c . || true)
  if [ "$count" -gt "$seen" ]; then
    printf '%s\n' "$lines" | tail -n +"$((seen + 1))"
    seen=$count
  fi
  rounds=$((rounds - 1))
done
