#!/usr/bin/env bash
# Instructions per request, counted by valgrind's cachegrind: a figure that does not drift
# with the machine, for changes too small to show through its noise (this VM's speed moves
# by tens of percent within minutes; two runs in a row agree to about 0.05%).
#
# For each listen mode: the user-space instructions of the process for N signed call_ended
# POSTs (oha -c 8), minus those of the same process started and stopped with no request.
# Then the whole of one `send` and one `replay --events all` (start-up included).
#
# Caveat: under valgrind the CPU has no SHA extensions, so SHA-256 runs in software (about
# 120,000 instructions for the HMAC of a 2 KB body, which takes 1.8 µs with SHA-NI).
# Compare counts with each other, not with times.
#
#   bench/instructions.sh           # N=2000 requests per mode
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${N:-2000}
KEY=bench_key_$RANDOM$RANDOM

need valgrind "apt-get install -y valgrind"
need oha "cargo install oha --locked"
require_tools

build_release
machine
# Seeded: a body of the same size every run (the HMAC's count grows with it).
HOOKCLI_SEED=7 "$BIN" show call_ended --compact >"$WORK/body.json"

# counted NAME ARGS...: the instructions of `hookcli ARGS...`, summed over its cachegrind files.
counted() {
  local name=$1
  shift
  rm -f "$WORK/$name".cg.*
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$WORK/$name.cg.%p" \
    "$BIN" "$@" 2>"$WORK/$name.vg" >/dev/null
}

total() {
  grep -h '^summary:' "$WORK/$1".cg.* | awk '{s += $2} END {print s}'
}

# listen_with NAME REQUESTS ARGS...: listen under cachegrind, sent REQUESTS POSTs, stopped.
listen_with() {
  local name=$1 requests=$2 url sig
  shift 2
  rm -f "$WORK/$name".cg.*
  HOOKCLI_SECRET=$KEY valgrind --tool=cachegrind --cache-sim=no \
    --cachegrind-out-file="$WORK/$name.cg.%p" "$BIN" listen --port 0 "$@" \
    >"$WORK/$name.lines" 2>"$WORK/$name.err" &
  local pid=$!
  url=$(wait_ready "$WORK/$name.err")
  sig=$("$BIN" sign --secret "$KEY" "$WORK/body.json")
  if ((requests > 0)); then
    oha -n "$requests" -c 8 --no-tui -m POST -H 'content-type: application/json' \
      -H "$sig" -D "$WORK/body.json" "$url" >"$WORK/$name.oha"
  fi
  kill -INT "$pid"
  wait "$pid" || true
}

# per_request LABEL ARGS...: listen ARGS, idle and with N requests; prints the difference / N.
per_request() {
  local label=$1 idle busy
  shift
  listen_with idle 0 "$@"
  idle=$(total idle)
  listen_with busy "$N" "$@"
  busy=$(total busy)
  printf '%-34s %9d instructions per request\n' "$label" $(((busy - idle) / N))
}

echo "listen, $N signed call_ended POSTs of $(wc -c <"$WORK/body.json") bytes (oha -c 8), user-space instructions per request:"
per_request "listen -q" -q
per_request "listen (a line per request)"
per_request "listen -q --record FILE" -q --record "$WORK/record.ndjson"

# send and replay against a listen -q of their own (not under valgrind).
HOOKCLI_SECRET=$KEY "$BIN" listen --port 0 -q 2>"$WORK/receiver.err" &
PIDS+=($!)
url=$(wait_ready "$WORK/receiver.err")
export HOOKCLI_SECRET=$KEY HOOKCLI_SEED=7
counted send send call_ended --to "$url"
printf '%-34s %9d instructions\n' "send call_ended" "$(total send)"
counted replay replay --events all --to "$url" --json
printf '%-34s %9d instructions\n' "replay --events all" "$(total replay)"
