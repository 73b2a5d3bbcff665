#!/usr/bin/env bash
# Issue 4's bars, measured side by side on this machine:
#  1. replaying the uponai `call` lifecycle with --events all into a local receiver takes no
#     longer than curl posting the same bodies over one connection (curl URL --next URL ...);
#  2. 1,000 calls at concurrency 50 finish with peak memory under 50 MB.
# The receiver is `hookcli listen` without a key (curl does not sign), answering 204; hookcli
# signs every request anyway (with a bench key), so its figures include the signing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

need hyperfine "apt-get install -y hyperfine"
need curl "apt-get install -y curl"
need python3 "apt-get install -y python3"
[ -x /usr/bin/time ] || MISSING+=("GNU time: apt-get install -y time")
require_tools

# TARGET=x86_64-unknown-linux-musl: the static binary the Linux releases ship (lib.sh).
build_release

# Starts `hookcli listen` with the given flags; sets $url once its ready line is out.
# (Not in $(...): the listener would hold the substitution's pipe open.)
start_listener() {
  local err="$WORK/listen-$RANDOM.err"
  taskset -c "$RECV_CPU" "$BIN" listen --port 0 -q "$@" >/dev/null 2>"$err" &
  PIDS+=($!)
  url=$(wait_ready "$err")
}

# One call's bodies, as the receiver got them.
start_listener --record "$WORK/call.ndjson"
HOOKCLI_SEED=7 "$BIN" replay --events all --to "$url" --json >/dev/null
start_listener

# curl posting the same bodies, one connection, --next between requests.
python3 - "$WORK" "$url" <<'PY'
import json, sys, shlex
work, url = sys.argv[1], sys.argv[2]
args = ["curl"]
for i, line in enumerate(open(f"{work}/call.ndjson")):
    path = f"{work}/body{i}.json"
    open(path, "w").write(json.loads(line)["body"])
    if i:
        args.append("--next")
    args += ["-s", "-o", "/dev/null", "-H", "content-type: application/json", "--data-binary", f"@{path}", url]
open(f"{work}/curl.cmd", "w").write(" ".join(shlex.quote(a) for a in args))
PY
deliveries=$(wc -l <"$WORK/call.ndjson")
export HOOKCLI_SECRET=bench_replay_key
# Rounds of the three side by side, each round's ratios taken within it: the machine's speed
# drifts by tens of percent over minutes, which a single long run would put between hookcli's
# runs and curl's.
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-30}
echo "== one uponai call, --events all: $deliveries deliveries to $url ($ROUNDS rounds of $RUNS runs each)"
# The seed comes from this environment, not from `env HOOKCLI_SEED=7 hookcli ...`: that would
# time env's own start-up (about 1 ms here, a dynamically linked program) as replay's.
export HOOKCLI_SEED=7
for round in $(seq "$ROUNDS"); do
  client hyperfine -N --warmup 5 --runs "$RUNS" --style none --export-json "$WORK/replay-$round.json" \
    -n "hookcli replay (renders and signs)" "$BIN replay --events all --to $url --json" \
    -n "hookcli replay --from (same bodies, re-signed)" "$BIN replay --from $WORK/call.ndjson --to $url --json" \
    -n "curl --next (same bodies, unsigned)" "$(cat "$WORK/curl.cmd")" >/dev/null
done
unset HOOKCLI_SEED
python3 - "$WORK" "$ROUNDS" "$deliveries" <<'PY'
import json, statistics, sys
work, rounds, deliveries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = [json.load(open(f"{work}/replay-{n}.json"))["results"] for n in range(1, rounds + 1)]
for i in range(2):
    ratios = [r[i]["median"] / r[2]["median"] for r in runs]
    ms = ", ".join(f"{r[i]['median'] * 1000:.1f}/{r[2]['median'] * 1000:.1f}" for r in runs)
    shown = ", ".join(f"{x:.2f}" for x in ratios)
    print(f"{runs[0][i]['command']}: {shown}x curl by round (ms, hookcli/curl: {ms});"
          f" median {statistics.median(ratios):.2f} (bar: <= 0.40)")
# hyperfine's user + system time over the deliveries of one run, start-up included.
for i in range(3):
    per = ", ".join(f"{(r[i]['user'] + r[i]['system']) * 1e6 / deliveries:.0f}" for r in runs)
    print(f"  CPU per delivery (user + system, mean) by round, {runs[0][i]['command']}: {per} us")
PY

echo
echo "== 1,000 calls at concurrency 50, --events all"
/usr/bin/time -f "%M KB peak RSS, %e s wall" "$BIN" replay --calls 1000 --concurrency 50 --events all --to "$url" --json 2>&1 >/dev/null | tail -1
