#!/usr/bin/env bash
# Times `hookcli check` (every case, uponai) against `hookcli listen` on this machine, with a
# release build. The figure in README "Use in CI" comes from this script.
#
#   bench/check.sh [RUNS]     (hyperfine when installed, else `time` over one run)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
bin=target/release/hookcli
key=key_bench_check_not_secret
log=$(mktemp)

"$bin" listen --port 0 --secret "$key" --quiet 2>"$log" &
listener=$!
trap 'kill "$listener" 2>/dev/null || true; rm -f "$log"' EXIT

# The ready line carries the URL (port 0 picks a free port).
for _ in $(seq 100); do
  grep -q '^listening on ' "$log" && break
  sleep 0.05
done
url=$(sed -n 's/^listening on //p' "$log" | head -n 1)
if [ -z "$url" ]; then
  echo "hookcli listen did not start:" >&2
  cat "$log" >&2
  exit 1
fi

cmd="$bin check --to $url --secret $key"
# One run in full first: the suite must pass (exit 0) for the timing to mean anything.
$cmd | tail -n 1
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 2 --runs "${1:-20}" --output=null "$cmd"
else
  time $cmd >/dev/null
fi
