#!/usr/bin/env bash
# hookcli load against oha, side by side, on one machine: nginx on loopback answers 204; both
# tools run -c 64 for the same time and POST the same kind of request, a rendered call_ended
# (about 2 KB) with its signature header (oha's made once, hookcli's fresh each time). Then
# hookcli's peak memory for 1,000,000 deliveries, and how well --rate holds 500/s. With wrk
# installed, a round also runs wrk (-t 1): a C client's figures, for what the receiver can take.
# Installs nothing: it says what is missing.
#
#   cargo build --release && bench/load.sh
#
# Environment: CONNECTIONS (64), SECONDS_EACH (5), ROUNDS (7), PORT (18080), COUNT (1000000).
set -euo pipefail

cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
SECONDS_EACH=${SECONDS_EACH:-5}
PORT=${PORT:-18080}
COUNT=${COUNT:-1000000}
ROUNDS=${ROUNDS:-7}
HOOKCLI=${HOOKCLI:-target/release/hookcli}
# Each side on its own core: nginx on RECV_CPU, oha and hookcli load on CLIENT_CPU.
RECV_CPU=${RECV_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

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
need taskset "apt-get install -y util-linux"
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
echo "   (nginx on core $RECV_CPU, the clients on core $CLIENT_CPU; CPU = user + system time of the client per request;"
echo "    busy = each core's share of the round, from /proc/stat: a full core bounds the round)"
# nginx: answers 204 to everything, reads the body, keeps connections alive for good. It is
# the receiver both clients load, not a competitor, so it is made as light as it goes: one
# worker (it has one core; "auto" started two on it), and a header buffer that holds a whole
# 2 KB request, so each request is one read (the 1 KB default took three reads and an ioctl;
# strace -c). A receiver at its ceiling caps both clients alike and hides their difference.
mkdir -p "$work/logs"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
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
    client_header_buffer_size 4k;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 204; }
    }
}
EOF
taskset -c "$RECV_CPU" nginx -c "$work/nginx.conf" -p "$work"
URL="http://127.0.0.1:$PORT/webhook"
for _ in $(seq 50); do
    curl -s -o /dev/null -X POST "$URL" 2>/dev/null && break || sleep 0.1
done

# oha's request: one call_ended exactly as hookcli puts it on the wire (compact JSON, 2,087
# bytes), signed once; hookcli renders and signs a fresh one per delivery, with fresh ids
# (2.0-2.3 KB).
HOOKCLI_SEED=7 "$HOOKCLI" show call_ended --compact >"$work/body.json"
signature=$("$HOOKCLI" sign --secret key_bench "$work/body.json")
if command -v wrk >/dev/null 2>&1; then
    python3 - "$work/body.json" "$signature" >"$work/post.lua" <<'EOF'
import sys
body = open(sys.argv[1]).read()
name, value = sys.argv[2].split(": ", 1)
print('wrk.method = "POST"')
print(f"wrk.body = [==[{body}]==]")
print('wrk.headers["content-type"] = "application/json"')
print(f'wrk.headers["{name}"] = "{value}"')
EOF
fi

# Both cores' busy share while a client runs, from /proc/stat (user + nice + system + irq +
# softirq against idle + iowait): the side whose core is full bounds the round.
core_ticks() {
    awk -v r="cpu$RECV_CPU" -v c="cpu$CLIENT_CPU" '
        $1 == r {rb = $2 + $3 + $4 + $7 + $8; ri = $5 + $6}
        $1 == c {cb = $2 + $3 + $4 + $7 + $8; ci = $5 + $6}
        END {print rb, ri, cb, ci}' /proc/stat
}
busy_share() { # before after
    awk -v b="$1" -v a="$2" 'BEGIN {
        split(b, x, " "); split(a, y, " ")
        rb = y[1] - x[1]; ri = y[2] - x[2]; cb = y[3] - x[3]; ci = y[4] - x[4]
        printf "%.0f%% busy, the client'"'"'s %.0f%%", 100 * rb / (rb + ri), 100 * cb / (cb + ci)}'
}

# The machine is shared and its speed drifts within seconds (another tenant's load), so the
# two tools alternate in short rounds, and the one that goes first alternates too (oha first in
# odd rounds, hookcli in even ones): a slowdown over a pair then falls on each tool as often.
# The median ratio is the figure; every round is printed.
run_oha() {
    local before
    before=$(core_ticks)
    /usr/bin/time -f "%U %S" -o "$work/oha.time" taskset -c "$CLIENT_CPU" \
        oha -c "$CONNECTIONS" -z "${SECONDS_EACH}s" -m POST -D "$work/body.json" \
        -H 'content-type: application/json' -H "$signature" --no-tui --output-format json "$URL" \
        >"$work/oha.json"
    oha_busy=$(busy_share "$before" "$(core_ticks)")
}
run_hookcli() {
    local before
    before=$(core_ticks)
    /usr/bin/time -f "%U %S" -o "$work/hookcli.time" taskset -c "$CLIENT_CPU" \
        "$HOOKCLI" load -c "$CONNECTIONS" -z "${SECONDS_EACH}s" --secret key_bench --to "$URL" \
        --json >"$work/hookcli.json"
    hookcli_busy=$(busy_share "$before" "$(core_ticks)")
}
ratios=()
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        run_oha
        run_hookcli
    else
        run_hookcli
        run_oha
    fi
    line=$(python3 - "$work" "$oha_busy" "$hookcli_busy" <<'EOF'
import json, sys
work, oha_busy, hookcli_busy = sys.argv[1:4]
o = json.load(open(f"{work}/oha.json"))
r = json.load(open(f"{work}/hookcli.json"))
oha = o["summary"]["requestsPerSec"]
oha_n = sum(o.get("statusCodeDistribution", {}).values()) or 1
cpu = lambda name: sum(map(float, open(f"{work}/{name}.time").read().split()))
oha_us = cpu("oha") * 1e6 / oha_n
us = cpu("hookcli") * 1e6 / max(r["deliveries"], 1)
with open(f"{work}/cpu.txt", "a") as f:
    f.write(f"{us / oha_us:.3f}\n")
l = r["latency_ms"]
print(f"{r['deliveries_per_second'] / oha:.3f} oha {oha:.0f}/s ({oha_us:.1f} us CPU each; "
      f"nginx's core {oha_busy}), hookcli {r['deliveries_per_second']:.0f}/s "
      f"({us:.1f} us CPU each, signed; nginx's core {hookcli_busy}; "
      f"{r['failed']} failed, p50 {l['p50']} ms, p99 {l['p99']} ms)")
EOF
)
    ratios+=("${line%% *}")
    echo "round $round: ${line#* } -> ratio ${line%% *}"
    if [ -f "$work/post.lua" ]; then
        before=$(core_ticks)
        /usr/bin/time -f "%U %S" -o "$work/wrk.time" taskset -c "$CLIENT_CPU" \
            wrk -t 1 -c "$CONNECTIONS" -d "${SECONDS_EACH}s" -s "$work/post.lua" "$URL" >"$work/wrk.txt"
        wrk_busy=$(busy_share "$before" "$(core_ticks)")
        awk -v busy="$wrk_busy" -v cpu="$(cat "$work/wrk.time")" '
            /requests in/ {n = $1} /Requests\/sec/ {rate = $2}
            END {split(cpu, t, " "); printf "         (wrk -t 1, for reference: %.0f/s, %.1f us CPU each; nginx'"'"'s core %s)\n", rate, (t[1] + t[2]) * 1e6 / n, busy}' "$work/wrk.txt"
    fi
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median ratio hookcli/oha over %d rounds: %s (bar: >= 1.10)\n", NR, a[int((NR+1)/2)]}'
# The CPU each delivery cost hookcli, as a share of what each request cost oha in the same round.
sort -n "$work/cpu.txt" | awk '{a[NR]=$1} END {printf "median CPU per delivery, hookcli/oha: %s (bar: < 1)\n", a[int((NR+1)/2)]}'

echo "== peak memory: hookcli load -c $CONNECTIONS -n $COUNT =="
/usr/bin/time -v taskset -c "$CLIENT_CPU" "$HOOKCLI" load -c "$CONNECTIONS" -n "$COUNT" --secret key_bench --to "$URL" --json \
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
