#!/usr/bin/env bash
# Benchmark: `comfyfleet servers test --all` over 50 testkit servers, 10 of which hang, with a 2 s timeout.
# Target: the whole command finishes in under 3 s (the tests run in parallel, bounded by the slowest timeout).
# Usage: scripts/bench-servers-test-all.sh [COUNT] [HANGING] [TIMEOUT_S]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"
cd "$ROOT"

count="${1:-50}" hanging="${2:-10}" timeout_s="${3:-2}"
cargo build --release -q -p comfyfleet-cli -p comfyfleet-testkit
bin="$CARGO_TARGET_DIR/release"

work="$(mktemp -d)"
export COMFYFLEET_HOME="$work/home"
fleet_out="$work/fleet.jsonl"
# stdin kept open through a fifo: the fleet stops when this script exits and the fifo closes.
mkfifo "$work/stdin"
"$bin/comfyfleet-testkit" fleet --count "$count" --hang "$hanging" <"$work/stdin" >"$fleet_out" &
fleet_pid=$!
exec 3>"$work/stdin"
cleanup() { exec 3>&- || true; kill "$fleet_pid" 2>/dev/null || true; wait "$fleet_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 100); do grep -q '^READY' "$fleet_out" 2>/dev/null && break; sleep 0.1; done
grep -q '^READY' "$fleet_out" || die "the testkit fleet did not start"

# One import document with every server (timeout in ms).
{
  printf '{"format":"comfyfleet-servers","version":1,"servers":['
  sep=""
  while IFS= read -r line; do
    [[ "$line" == "{"* ]] || continue
    name="$(sed -E 's/.*"name":"([^"]+)".*/\1/' <<<"$line")"
    url="$(sed -E 's/.*"url":"([^"]+)".*/\1/' <<<"$line")"
    printf '%s{"name":"%s","url":"%s","timeout_ms":%d}' "$sep" "$name" "$url" "$((timeout_s * 1000))"
    sep=","
  done <"$fleet_out"
  printf ']}'
} >"$work/servers.json"
"$bin/comfyfleet" servers import "$work/servers.json" >/dev/null

start=$(date +%s%N)
set +e
"$bin/comfyfleet" servers test --all --json >"$work/result.json"
set -e
end=$(date +%s%N)
wall_ms=$(( (end - start) / 1000000 ))

connected=$(grep -c '"status": "connected"' "$work/result.json" || true)
timed_out=$(grep -c '"status": "timeout"' "$work/result.json" || true)
echo "servers: $count (hanging: $hanging), timeout: ${timeout_s} s"
echo "connected: $connected, timeout: $timed_out"
echo "servers_test_all_wall_ms=$wall_ms (target < 3000)"
[ "$connected" -eq $((count - hanging)) ] && [ "$timed_out" -eq "$hanging" ] || die "unexpected statuses"
[ "$wall_ms" -lt 3000 ] && echo "PASS" || { echo "FAIL"; exit 1; }
