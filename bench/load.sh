#!/usr/bin/env bash
# hookcli load against oha, side by side, on one machine: nginx on loopback answers 204 to a
# 2 KB POST; both tools run -c 64 for the same time. Then hookcli's peak memory for 1,000,000
# deliveries, and how well --rate holds 500/s. Installs nothing: it says what is missing.
#
#   cargo build --release && bench/load.sh
#
# Environment: CONNECTIONS (64), SECONDS_EACH (10), ROUNDS (3), PORT (18080), COUNT (1000000).
set -euo pipefail

cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
SECONDS_EACH=${SECONDS_EACH:-10}
PORT=${PORT:-18080}
COUNT=${COUNT:-1000000}
ROUNDS=${ROUNDS:-3}
HOOKCLI=${HOOKCLI:-target/release/hookcli}

missing=0
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "missing: $1 — install it with: $2" >&2
        missing=1
    fi
}
need nginx "apt-get install -y nginx"
need oha "cargo install oha --locked   (a long build; -j1 keeps the machine usable)"
need python3 "apt-get install -y python3"
[ -x /usr/bin/time ] || { echo "missing: /usr/bin/time — install it with: apt-get install -y time" >&2; missing=1; }
[ -x "$HOOKCLI" ] || { echo "missing: $HOOKCLI — build it with: cargo build --release" >&2; missing=1; }
[ "$missing" = 0 ] || exit 2

work=$(mktemp -d)
cleanup() {
    if [ -f "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== oha vs hookcli load, -c $CONNECTIONS, ${SECONDS_EACH}s each, $ROUNDS rounds, nginx answering 204 =="
# nginx: answers 204 to everything, reads the body, keeps connections alive for good.
mkdir -p "$work/logs"
cat >"$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/logs/error.log crit;
daemon on;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 204; }
    }
}
EOF
nginx -c "$work/nginx.conf" -p "$work"
URL="http://127.0.0.1:$PORT/webhook"
for _ in $(seq 50); do
    curl -s -o /dev/null -X POST "$URL" 2>/dev/null && break || sleep 0.1
done

# A 2 KB JSON body for oha (hookcli renders and signs its own, ~2-4 KB call_ended bodies).
python3 -c 'import json; print(json.dumps({"event": "call_ended", "pad": "x" * 2000}), end="")' >"$work/body.json"

# The machine is shared, so the two tools alternate for a few rounds and the median ratio
# is the figure; every round is printed.
ratios=()
for round in $(seq "$ROUNDS"); do
    oha -c "$CONNECTIONS" -z "${SECONDS_EACH}s" -m POST -D "$work/body.json" \
        -H 'content-type: application/json' --no-tui --output-format json "$URL" >"$work/oha.json"
    oha_rps=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(d["summary"]["requestsPerSec"], 1))' "$work/oha.json")
    "$HOOKCLI" load -c "$CONNECTIONS" -z "${SECONDS_EACH}s" --secret key_bench --to "$URL" --json >"$work/hookcli.json"
    line=$(python3 - "$work/hookcli.json" "$oha_rps" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
oha = float(sys.argv[2])
l = r["latency_ms"]
print(f"{r['deliveries_per_second'] / oha:.3f} oha {oha}/s, hookcli {r['deliveries_per_second']}/s "
      f"({r['failed']} failed, p50 {l['p50']} ms, p99 {l['p99']} ms)")
EOF
)
    ratios+=("${line%% *}")
    echo "round $round: ${line#* } -> ratio ${line%% *}"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median ratio hookcli/oha over %d rounds: %s (bar: >= 0.90)\n", NR, a[int((NR+1)/2)]}'

echo "== peak memory: hookcli load -c $CONNECTIONS -n $COUNT =="
/usr/bin/time -v "$HOOKCLI" load -c "$CONNECTIONS" -n "$COUNT" --secret key_bench --to "$URL" --json \
    >"$work/million.json" 2>"$work/time.txt"
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
python3 - "$work/million.json" "$rss_kb" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['deliveries']} deliveries in {r['elapsed_ms'] / 1000:.1f} s; "
      f"peak RSS {int(sys.argv[2]) / 1024:.1f} MB (bar: < 50 MB)")
EOF

echo "== --rate 500 for 10s =="
"$HOOKCLI" load -c 16 -z 10s --rate 500 --secret key_bench --to "$URL" --json >"$work/rate.json"
python3 - "$work/rate.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"asked 500/s for 10 s: {r['deliveries']} deliveries, {r['deliveries_per_second']}/s "
      f"({(r['deliveries_per_second'] / 500 - 1) * 100:+.2f}%)")
EOF
