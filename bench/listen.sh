#!/usr/bin/env bash
# Requests per second under load (oha, 64 connections, ~10 s each) for three receivers of the
# same signed call_ended body:
#   nginx answering a static 204 (the ceiling: no verification, no body handling);
#   hookcli listen --secret K -q, verifying x-retell-signature on every request;
#   the same without -q, also parsing each body and printing a line per request;
#   Express verifying with the official retell-sdk (bench/express, the docs' handler).
#
#   bench/listen.sh               # DURATION=10s CONNECTIONS=64 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
KEY=bench_key_$RANDOM$RANDOM
EXPRESS="$ROOT/bench/express"

need cargo "https://rustup.rs"
need oha "cargo install oha --locked"
need nginx "apt-get install -y nginx"
need node "apt-get install -y nodejs npm"
need npm "apt-get install -y npm"
require_tools
if [[ ! -d $EXPRESS/node_modules/retell-sdk || ! -d $EXPRESS/node_modules/express ]]; then
  echo "bench/express has no node_modules: run (cd bench/express && npm ci)" >&2
  exit 1
fi

build_release
machine
echo "load: oha -z $DURATION -c $CONNECTIONS, POST of one signed call_ended body"

"$BIN" show call_ended --compact >"$WORK/body.json"

# load NAME URL: prints "NAME: N req/s (status counts)"; fails unless every answer is 204.
load() {
  local name=$1 url=$2 sig out
  # Signed now: fresh for the 5-minute tolerance through the whole run.
  sig=$("$BIN" sign --secret "$KEY" "$WORK/body.json")
  out="$WORK/$name.json"
  oha -z "$DURATION" -c "$CONNECTIONS" --no-tui --output-format json -m POST \
    -H 'content-type: application/json' -H "$sig" -D "$WORK/body.json" "$url" >"$out"
  local rps codes
  rps=$(grep -o '"requestsPerSec": *[0-9.]*' "$out" | head -n1 | sed 's/.*: *//')
  codes=$(tr -d ' \n' <"$out" | grep -o '"statusCodeDistribution":{[^}]*}' | sed 's/.*:{//; s/}//')
  printf '%-32s %10.0f req/s   statuses {%s}\n' "$name" "$rps" "$codes"
  echo "$rps" >"$WORK/$name.rps"
  if [[ $codes != '"204":'* || $codes == *,* ]]; then
    echo "  not every answer was 204: the figure above does not count" >&2
    return 1
  fi
}

port=$(free_port)
start_nginx "$port"
load nginx "http://127.0.0.1:$port/webhook"

HOOKCLI_SECRET=$KEY "$BIN" listen --port 0 -q 2>"$WORK/listen.err" &
PIDS+=($!)
load hookcli-listen "$(wait_ready "$WORK/listen.err")"

# The same receiver printing its line per request (to a file): the cost of reporting.
HOOKCLI_SECRET=$KEY "$BIN" listen --port 0 >"$WORK/lines.txt" 2>"$WORK/listen-lines.err" &
PIDS+=($!)
load hookcli-listen-lines "$(wait_ready "$WORK/listen-lines.err")"

(cd "$EXPRESS" && HOOKCLI_SECRET=$KEY exec node server.js) 2>"$WORK/express.err" &
PIDS+=($!)
load express-retell-sdk "$(wait_ready "$WORK/express.err")"

awk -v n="$(cat "$WORK/nginx.rps")" -v h="$(cat "$WORK/hookcli-listen.rps")" \
  -v e="$(cat "$WORK/express-retell-sdk.rps")" -v l="$(cat "$WORK/hookcli-listen-lines.rps")" 'BEGIN {
  printf "hookcli listen / nginx = %.2f (bar: >= 0.5)\n", h/n
  printf "hookcli listen / express = %.1f (bar: >= 10)\n", h/e
  printf "hookcli listen with lines / nginx = %.2f, / express = %.1f\n", l/n, l/e
}'
