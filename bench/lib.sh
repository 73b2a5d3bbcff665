# Shared by bench/*.sh: tool checks, a scratch folder, readiness and an nginx that answers 204.
# Nothing here installs anything: a missing tool is named with the command that installs it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# TARGET=x86_64-unknown-linux-musl measures the static binary the Linux releases ship
# (`rustup target add` it and `apt-get install -y musl-tools` first); default: the host's.
TARGET=${TARGET:-}
BIN="$ROOT/target/${TARGET:+$TARGET/}release/hookcli"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hookcli-bench.XXXXXX")
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

MISSING=()
# need TOOL "how to install it"
need() {
  command -v "$1" >/dev/null 2>&1 || MISSING+=("$1: $2")
}

require_tools() {
  if ((${#MISSING[@]})); then
    echo "missing tools (this script installs nothing itself):" >&2
    printf '  %s\n' "${MISSING[@]}" >&2
    exit 1
  fi
}

# build_release [CARGO ARGS...]: the release build of $TARGET, and whatever else is asked for
# (listen.sh adds `--example floor`).
build_release() {
  (cd "$ROOT" && cargo build --release --locked --quiet ${TARGET:+--target "$TARGET"} "$@")
}

# wait_ready FILE: waits for a "listening on URL" line in FILE, prints the URL.
wait_ready() {
  local i url
  for i in $(seq 200); do
    url=$(sed -n 's/^listening on //p' "$1" | head -n1)
    if [[ -n "$url" ]]; then
      echo "$url"
      return 0
    fi
    sleep 0.05
  done
  echo "no ready line in $1:" >&2
  cat "$1" >&2
  return 1
}

# free_port: a loopback port nothing listens on.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
}

# start_nginx PORT: nginx answering a static 204 to every request on 127.0.0.1:PORT.
start_nginx() {
  local port=$1 dir="$WORK/nginx"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location / { return 204; }
  }
}
CONF
  taskset -c "$RECV_CPU" nginx -p "$dir" -c "$dir/nginx.conf" 2>"$dir/stderr" &
  PIDS+=($!)
  local i
  for i in $(seq 200); do
    if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nginx did not start:" >&2
  cat "$dir/stderr" "$dir/error.log" >&2 2>/dev/null || true
  return 1
}

# Each side gets its own core, so a ratio measures CPU spent per request, not a fight over
# cores: receivers on RECV_CPU, clients (oha, curl, hookcli load/send) on CLIENT_CPU.
RECV_CPU=${RECV_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
need taskset "apt-get install -y util-linux"
# In the foreground only: a function run with & is a subshell whose PID is not the
# program's, so background programs are started with taskset itself (cleanup kills by PID).
recv() { taskset -c "$RECV_CPU" "$@"; }
client() { taskset -c "$CLIENT_CPU" "$@"; }

# descendants PID: PID and every process under it (a background function's subshell, the
# program it runs, nginx's workers).
descendants() {
  local child
  echo "$1"
  for child in $(pgrep -P "$1" || true); do descendants "$child"; done
}

# cpu_ms PID: user + system CPU time of PID and its descendants so far, in ms.
cpu_ms() {
  local pid total=0 ticks hz
  hz=$(getconf CLK_TCK)
  for pid in $(descendants "$1"); do
    ticks=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}')
    total=$((total + ${ticks:-0}))
  done
  echo $((total * 1000 / hz))
}

machine() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
}
