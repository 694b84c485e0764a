#!/usr/bin/env bash
# The main job, from a fresh machine: install sitebeacon into .venv, build the sample site
# (Markdown -> HTML with the client module injected), start the receiver serving that site on the
# same origin, and print every record as the receiver stores it. Open the printed address, click
# a link: the page view, the leave (with visible time) and outbound clicks appear below.
#
#   bash scripts/demo.sh [--click] [--cross-origin] [--port N] [--db URL]
#
# --click         headless Chromium is the reader (installed like scripts/test.sh does, through
#                 scripts/setup.sh): it opens the index, clicks a post, closes the tab, and the
#                 demo stops after printing.
# --cross-origin  the receiver on a second origin, as most sites deploy it: the site is served
#                 as plain files on http://127.0.0.1:PORT (python -m http.server), the receiver
#                 listens on PORT+1 with --allow-origin http://127.0.0.1:PORT, and the site is
#                 built (into a temporary directory) with the absolute endpoint
#                 http://127.0.0.1:PORT+1/collect.
# --port N        the site's port (default 8787, or $PORT); --db URL (default sqlite:///demo.db,
#                 or $DB).
# Any failure prints one line and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8787}
db=${DB:-sqlite:///demo.db}
click=0
cross=0
while [ $# -gt 0 ]; do
  case "$1" in
    --click) click=1 ;;
    --cross-origin) cross=1 ;;
    --port)
      [ $# -ge 2 ] || { echo "demo: --port needs a number" >&2; exit 2; }
      port=$2; shift ;;
    --db)
      [ $# -ge 2 ] || { echo "demo: --db needs a URL such as sqlite:///demo.db" >&2; exit 2; }
      db=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $1 (use --click, --cross-origin, --port N, --db URL)" >&2
       exit 2 ;;
  esac
  shift
done
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65534 ]; then
  echo "demo: --port $port is not a port number (1-65534)" >&2
  exit 2
fi

setup=(--demo)
[ "$click" -eq 1 ] && setup+=(--chromium)
bash scripts/setup.sh "${setup[@]}"

is_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
receiver_port=$port
[ "$cross" -eq 1 ] && receiver_port=$((port + 1))
for p in $port $receiver_port; do
  if is_open "$p"; then
    echo "demo: port $p is already in use (choose another with --port)" >&2
    exit 1
  fi
done

pids=()
workdir=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -z "$workdir" ] || rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

site_url="http://127.0.0.1:$port"
if [ "$cross" -eq 0 ]; then
  .venv/bin/sitebeacon build sample_site
  .venv/bin/sitebeacon receive --db "$db" --port "$port" --site sample_site/_site &
  pids+=($!)
else
  # The sample site's own config with only the endpoint changed; its committed file stays as is.
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/sitebeacon-demo.XXXXXX")
  endpoint="http://127.0.0.1:$receiver_port/collect"
  { echo "endpoint = \"$endpoint\""; grep -v '^endpoint *=' sample_site/sitebeacon.toml; } \
    >"$workdir/sitebeacon.toml"
  .venv/bin/sitebeacon build sample_site -o "$workdir/site" --config "$workdir/sitebeacon.toml"
  .venv/bin/sitebeacon receive --db "$db" --port "$receiver_port" --allow-origin "$site_url" &
  pids+=($!)
  .venv/bin/python -m http.server "$port" --bind 127.0.0.1 --directory "$workdir/site" \
    >/dev/null 2>&1 &
  pids+=($!)
fi

# Wait until every server answers; one that exits has printed its one-line reason already.
for p in $port $receiver_port; do
  tries=0
  until is_open "$p"; do
    for pid in "${pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        status=0
        wait "$pid" || status=$?
        if [ "$status" -eq 0 ]; then  # a failing server has printed its one line already
          echo "demo: a server stopped before answering" >&2
          status=1
        fi
        exit "$status"
      fi
    done
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then
      echo "demo: nothing answers on 127.0.0.1:$p after 30 s" >&2
      exit 1
    fi
    sleep 0.1
  done
done

echo
if [ "$cross" -eq 1 ]; then
  echo "Site: $site_url/ (plain files); receiver: http://127.0.0.1:$receiver_port/collect"
  echo "(a second origin, sitebeacon receive --allow-origin $site_url)."
fi
echo "Open $site_url/ in a browser and click a link (Ctrl-C to stop)."
echo "Stored records (sitebeacon export --db $db):"
seen=0
rounds=-1
if [ "$click" -eq 1 ]; then
  .venv/bin/python scripts/demo_click.py "$site_url"
  rounds=3
fi
while [ "$rounds" -ne 0 ]; do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "demo: a server stopped" >&2; exit 1; }
  done
  sleep 1
  lines=$(.venv/bin/sitebeacon export --db "$db" 2>/dev/null || true)
  count=$(printf '%s' "$lines" | grep -c . || true)
  if [ "$count" -gt "$seen" ]; then
    printf '%s\n' "$lines" | tail -n +"$((seen + 1))"
    seen=$count
  fi
  rounds=$((rounds - 1))
done
