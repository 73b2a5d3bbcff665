#!/usr/bin/env bash
# One `hookcli send` to a local receiver that answers 204, against curl posting the same body
# (hyperfine, side by side), and the peak memory of one send.
#
#   bench/send.sh                 # receiver: hookcli listen --port 0 -q (verifying)
#   RECEIVER=nginx bench/send.sh  # receiver: nginx answering a static 204
#   RUNS=100 ROUNDS=5 bench/send.sh
#   TARGET=x86_64-unknown-linux-musl bench/send.sh  # the static binary releases ship
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-50}
RECEIVER=${RECEIVER:-hookcli}
KEY=bench_key_$RANDOM$RANDOM

need cargo "https://rustup.rs"
need hyperfine "apt-get install -y hyperfine"
need curl "apt-get install -y curl"
need python3 "apt-get install -y python3"
[[ -x /usr/bin/time ]] || MISSING+=("/usr/bin/time: apt-get install -y time")
[[ $RECEIVER != nginx ]] || need nginx "apt-get install -y nginx"
require_tools

build_release
machine

if [[ $RECEIVER == nginx ]]; then
  port=$(free_port)
  start_nginx "$port"
  URL="http://127.0.0.1:$port/webhook"
else
  HOOKCLI_SECRET=$KEY taskset -c "$RECV_CPU" "$BIN" listen --port 0 -q 2>"$WORK/listen.err" &
  PIDS+=($!)
  URL=$(wait_ready "$WORK/listen.err")
fi
echo "receiver: $RECEIVER at $URL"

"$BIN" show call_ended --compact >"$WORK/body.json"
echo "body: $(wc -c <"$WORK/body.json") bytes (hookcli show call_ended --compact)"

# curl sends the same body with a signature made now (valid for the 5 minutes of a run).
SIG=$("$BIN" sign --secret "$KEY" "$WORK/body.json")
CURL=(curl -s -o /dev/null -X POST -H 'content-type: application/json' -H "$SIG"
  --data-binary @"$WORK/body.json" "$URL")

# Both must be accepted, or the timing means nothing.
HOOKCLI_SECRET=$KEY "$BIN" send call_ended --to "$URL" >/dev/null ||
  { echo "hookcli send was not delivered" >&2; exit 1; }
status=$("${CURL[@]}" -w '%{http_code}')
[[ $status == 204 ]] || { echo "curl got $status, not 204" >&2; exit 1; }

export HOOKCLI_SECRET=$KEY
# Rounds side by side, each round's ratio taken within it: the machine's speed drifts by tens
# of percent over minutes, which one long run would put between hookcli's runs and curl's.
ROUNDS=${ROUNDS:-3}
for round in $(seq "$ROUNDS"); do
  client hyperfine -N --warmup 5 --runs "$RUNS" --style none --export-json "$WORK/send-$round.json" \
    -n "hookcli send" "$BIN send call_ended --to $URL" \
    -n "curl" "curl -s -o /dev/null -X POST -H 'content-type: application/json' -H '$SIG' --data-binary @$WORK/body.json $URL" >/dev/null
done
python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{work}/send-{n}.json"))["results"] for n in range(1, rounds + 1)]
ratios = [r[0]["median"] / r[1]["median"] for r in runs]
ms = ", ".join(f"{r[0]['median'] * 1000:.2f}/{r[1]['median'] * 1000:.2f}" for r in runs)
print(f"median by round: hookcli send / curl {', '.join(f'{x:.2f}' for x in ratios)}"
      f" (ms: {ms}); median {statistics.median(ratios):.2f} (bar: <= 0.35)")
# hyperfine's user + system time: the CPU one delivery costs each, start-up included.
cpu = lambda one: f"{(one['user'] + one['system']) * 1000:.2f}"
print(f"CPU per run (user + system, mean) by round: hookcli send"
      f" {', '.join(cpu(r[0]) for r in runs)} ms; curl {', '.join(cpu(r[1]) for r in runs)} ms")
PY

rss_kb=$(/usr/bin/time -v "$BIN" send call_ended --to "$URL" 2>&1 >/dev/null |
  sed -n 's/.*Maximum resident set size (kbytes): //p')
curl_kb=$(/usr/bin/time -v "${CURL[@]}" 2>&1 | sed -n 's/.*Maximum resident set size (kbytes): //p')
awk -v h="$rss_kb" -v c="$curl_kb" 'BEGIN {
  printf "peak RSS: hookcli send %.1f MB, curl %.1f MB\n", h/1024, c/1024
}'
