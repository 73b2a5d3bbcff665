#!/usr/bin/env bash
# Requests per second under load (oha, 64 connections, ~10 s each) for receivers of the same
# signed call_ended body, each pinned to core RECV_CPU with oha on CLIENT_CPU (lib.sh):
#   nginx answering a static 204 (the ceiling: no verification, no body handling);
#   hookcli listen -q, verifying x-retell-signature on every request;
#   hookcli listen, also naming each request and writing its line, to a file and to a pipe;
#   hookcli listen -q --record FILE (every request recorded before it is answered);
#   hookcli listen --ui with a client polling the inspector's API as the page does;
#   Express verifying with the official retell-sdk (bench/express), when installed.
# Prints req/s, CPU ms per 1,000 requests on the receiver's side, and the ratios to nginx.
#
# FLOOR=1 measures, instead of the modes above, `listen -q` against its floor: listen's own
# per-request decision (receiver::Judge) behind a bare HTTP/1 layer, without listen's
# connection bookkeeping (examples/floor.rs): once with hyper's server, once with httparse.
#
#   bench/listen.sh               # DURATION=10s CONNECTIONS=64 ROUNDS=3 by default
#   FLOOR=1 bench/listen.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
KEY=bench_key_$RANDOM$RANDOM
EXPRESS="$ROOT/bench/express"

need cargo "https://rustup.rs"
need oha "cargo install oha --locked"
need nginx "apt-get install -y nginx"
need python3 "apt-get install -y python3"
require_tools

build_release
machine
echo "load: oha -z $DURATION -c $CONNECTIONS on core $CLIENT_CPU, receivers on core $RECV_CPU"

"$BIN" show call_ended --compact >"$WORK/body.json"

# load NAME URL PID: prints "NAME: N req/s, CPU per 1k"; fails unless every answer is 204.
load() {
  local name=$1 url=$2 pid=$3 sig out before after
  # Signed now: fresh for the 5-minute tolerance through the whole run.
  sig=$("$BIN" sign --secret "$KEY" "$WORK/body.json")
  out="$WORK/$name.json"
  before=$(cpu_ms "$pid")
  client oha -z "$DURATION" -c "$CONNECTIONS" --no-tui --output-format json -m POST \
    -H 'content-type: application/json' -H "$sig" -D "$WORK/body.json" "$url" >"$out"
  after=$(cpu_ms "$pid")
  python3 - "$out" "$name" "$((after - before))" "$WORK/$name.rps" <<'PY'
import json, sys
out, name, cpu_ms, rps_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = json.load(open(out))
rps = d["summary"]["requestsPerSec"]
codes = d.get("statusCodeDistribution", {})
total = sum(codes.values())
per_k = cpu_ms / total * 1000 if total else float("nan")
print(f"{name:<34} {rps:>9.0f} req/s   receiver CPU {per_k:6.1f} ms per 1,000   statuses {codes}")
open(rps_file, "w").write(f"{rps}\n")
if list(codes) != ["204"]:
    print("  not every answer was 204: the figure above does not count", file=sys.stderr)
    sys.exit(1)
PY
}

# start NAME ARGS...: hookcli listen on the receiver core; sets URL and PID.
start() {
  local name=$1
  shift
  HOOKCLI_SECRET=$KEY taskset -c "$RECV_CPU" "$BIN" listen --port 0 "$@" 2>"$WORK/$name.err" &
  PID=$!
  PIDS+=("$PID")
  URL=$(wait_ready "$WORK/$name.err")
}

stop() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

port=$(free_port)
start_nginx "$port"
NGINX_URL="http://127.0.0.1:$port/webhook"
NGINX_PID=${PIDS[-1]}

# rounds NAME: ROUNDS pairs of nginx, then the receiver just started. The machine's speed
# drifts by tens of percent over minutes, so each ratio is taken against the nginx run next
# to it, and the median of the rounds is the figure.
rounds() {
  local r
  for r in $(seq "$ROUNDS"); do
    load "nginx-for-$1#$r" "$NGINX_URL" "$NGINX_PID"
    load "$1#$r" "$URL" "$PID"
  done
}

start listen-q -q
rounds listen-q
stop

# listen's decision behind a bare HTTP/1 layer (examples/floor.rs), with hyper and without.
floor_receivers() {
  build_release --example floor
  FLOOR_BIN="$(dirname "$BIN")/examples/floor"
  for layer in hyper raw; do
    HOOKCLI_SECRET=$KEY taskset -c "$RECV_CPU" "$FLOOR_BIN" "$layer" 2>"$WORK/floor-$layer.err" &
    PID=$!
    PIDS+=("$PID")
    URL=$(wait_ready "$WORK/floor-$layer.err")
    rounds "floor-judge-$layer"
    stop
  done
}

# The other modes, and Express when installed.
other_receivers() {
  # The default mode: a line per request, to a file and through a pipe.
  start listen-lines-file >"$WORK/lines.txt"
  rounds listen-lines-file
  stop
  start listen-lines-pipe > >(cat >/dev/null)
  rounds listen-lines-pipe
  stop

  start listen-q-record -q --record "$WORK/record.ndjson"
  rounds listen-q-record
  stop

  # The inspector open: a client on the client core asks for new rows as the page does.
  start listen-ui --ui >"$WORK/ui-lines.txt"
  ui=$(sed -n 's/^inspector on //p' "$WORK/listen-ui.err" | head -n1)
  for _ in $(seq 100); do
    [[ -n $ui ]] && break
    sleep 0.05
    ui=$(sed -n 's/^inspector on //p' "$WORK/listen-ui.err" | head -n1)
  done
  taskset -c "$CLIENT_CPU" python3 "$ROOT/bench/page.py" "$ui" >"$WORK/page.log" 2>&1 &
  page=$!
  PIDS+=("$page")
  rounds listen-ui-polled
  kill "$page" 2>/dev/null || true
  stop
  echo "  the page's client got $(tail -n1 "$WORK/page.log")"

  if [[ -d $EXPRESS/node_modules/retell-sdk && -d $EXPRESS/node_modules/express ]]; then
    (cd "$EXPRESS" && HOOKCLI_SECRET=$KEY exec taskset -c "$RECV_CPU" node server.js) \
      2>"$WORK/express.err" &
    PIDS+=($!)
    URL=$(wait_ready "$WORK/express.err")
    PID=${PIDS[-1]}
    rounds express-retell-sdk
  else
    echo "(Express skipped: run (cd bench/express && npm ci) to include it)"
  fi
}

if [[ ${FLOOR:-} == 1 ]]; then
  floor_receivers
else
  other_receivers
fi

python3 - "$WORK" <<'PY'
import os, statistics, sys
work = sys.argv[1]
runs = {}
for f in os.listdir(work):
    if f.endswith(".rps"):
        name, _, _ = f[:-4].partition("#")
        runs.setdefault(name, []).append((f[:-4], float(open(os.path.join(work, f)).read())))
def rps(run):
    return float(open(os.path.join(work, run + ".rps")).read())
bars = {"listen-q": 0.9, "listen-lines-file": 0.8, "listen-lines-pipe": 0.8, "listen-ui-polled": 0.8}
for name, named in sorted(runs.items()):
    if name.startswith("nginx"):
        continue
    ratios = sorted(value / rps("nginx-for-" + run) for run, value in named)
    bar = f" (bar: >= {bars[name]})" if name in bars else ""
    each = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"{name} / nginx run just before: median {statistics.median(ratios):.2f} of {each}{bar}")
if "express-retell-sdk" in runs:
    q = statistics.median(v for _, v in runs["listen-q"])
    e = statistics.median(v for _, v in runs["express-retell-sdk"])
    print(f"listen-q / express = {q / e:.1f} (bar: >= 10)")
PY
