#!/usr/bin/env bash
# Issue 4's bars, measured side by side on this machine:
#  1. replaying the uponai `call` lifecycle with --events all into a local receiver takes no
#     longer than curl posting the same bodies over one connection (curl URL --next URL ...);
#  2. 1,000 calls at concurrency 50 finish with peak memory under 50 MB.
# The receiver is `hookcli listen` without a key (curl does not sign), answering 204; hookcli
# signs every request anyway (with a bench key), so its figures include the signing.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null || { echo "bench/replay.sh needs $1: $2" >&2; exit 2; }; }
need hyperfine "apt-get install -y hyperfine"
need curl "apt-get install -y curl"
need python3 "apt-get install -y python3"
[ -x /usr/bin/time ] || { echo "bench/replay.sh needs GNU time: apt-get install -y time" >&2; exit 2; }

# TARGET=x86_64-unknown-linux-musl: the static binary the Linux releases ship.
TARGET=${TARGET:-}
cargo build --release --locked -q ${TARGET:+--target "$TARGET"}
bin=$PWD/target/${TARGET:+$TARGET/}release/hookcli
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Starts `hookcli listen` with the given flags; sets $url once its ready line is out.
# (Not in $(...): the listener would hold the substitution's pipe open.)
start_listener() {
  local err="$work/listen-$RANDOM.err"
  taskset -c "${RECV_CPU:-0}" "$bin" listen --port 0 -q "$@" >/dev/null 2>"$err" &
  pids+=($!)
  until grep -q '^listening on ' "$err" 2>/dev/null; do sleep 0.05; done
  url=$(grep -o 'http://[^ ]*' "$err" | head -1)
}

# One call's bodies, as the receiver got them.
start_listener --record "$work/call.ndjson"
HOOKCLI_SEED=7 "$bin" replay --events all --to "$url" --json >/dev/null
start_listener

# curl posting the same bodies, one connection, --next between requests.
python3 - "$work" "$url" <<'PY'
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
deliveries=$(wc -l <"$work/call.ndjson")
export HOOKCLI_SECRET=bench_replay_key
echo "== one uponai call, --events all: $deliveries deliveries to $url"
taskset -c "${CLIENT_CPU:-1}" hyperfine -N --warmup 5 --runs 40 --export-json "$work/replay.json" \
  --export-markdown "$work/replay.md" \
  -n "hookcli replay (renders and signs)" "env HOOKCLI_SEED=7 $bin replay --events all --to $url --json" \
  -n "hookcli replay --from (same bodies, re-signed)" "$bin replay --from $work/call.ndjson --to $url --json" \
  -n "curl --next (same bodies, unsigned)" "$(cat "$work/curl.cmd")"
cat "$work/replay.md"
python3 - "$work/replay.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
curl = r[2]["median"]
for one in r[:2]:
    print(f"{one['command']}: median {one['median'] * 1000:.1f} ms = {one['median'] / curl:.2f}x curl (bar: <= 0.40)")
PY

echo
echo "== 1,000 calls at concurrency 50, --events all"
/usr/bin/time -f "%M KB peak RSS, %e s wall" "$bin" replay --calls 1000 --concurrency 50 --events all --to "$url" --json 2>&1 >/dev/null | tail -1
