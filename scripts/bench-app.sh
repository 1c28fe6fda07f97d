#!/usr/bin/env bash
# Measure the built desktop app: time from launch to its first visible window, and the memory
# (summed RSS of the app and its WebKit processes) after it has sat idle. Runs under a private
# Xvfb with a throwaway COMFYFLEET_HOME and keyring, so it touches none of your data.
#
#   scripts/bench-app.sh [--runs N] [--idle SECONDS] [--release] [--no-build]
#
# Prints one line per run and a final line with the medians:
#   time_to_first_window_ms=... idle_rss_mib=...
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUNS=3
IDLE=10
PROFILE=debug
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --idle) IDLE="$2"; shift 2 ;;
    --release) PROFILE=release; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
APP="$CARGO_TARGET_DIR/$PROFILE/comfyfleet-app"

# Inner part: runs inside the keyring session with DISPLAY set (see the bottom of this file).
measure_once() {
  local home t0 t1 app_pid wid pids rss_kb total_kb=0 pid name kb
  home="$(mktemp -d "${TMPDIR:-/tmp}/comfyfleet-bench.XXXXXX")"
  t0=$(date +%s%N)
  COMFYFLEET_HOME="$home" WEBKIT_DISABLE_DMABUF_RENDERER=1 "$APP" >"$home/app.log" 2>&1 &
  app_pid=$!
  wid=""
  while [ -z "$wid" ]; do
    kill -0 "$app_pid" 2>/dev/null || { cat "$home/app.log" >&2; die "the app exited before showing a window"; }
    [ $((($(date +%s%N) - t0) / 1000000)) -lt 60000 ] || die "no ComfyFleet window after 60 s"
    wid="$(xdotool search --onlyvisible --name '^ComfyFleet' 2>/dev/null | head -n1 || true)"
    [ -n "$wid" ] || sleep 0.01
  done
  t1=$(date +%s%N)

  sleep "$IDLE"
  # The app and every process under it (WebKitWebProcess, WebKitNetworkProcess, ...).
  pids="$(descendants "$app_pid")"
  for pid in $app_pid $pids; do
    [ -r "/proc/$pid/status" ] || continue
    name="$(awk '/^Name:/ {print $2}' "/proc/$pid/status")"
    kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
    kb="${kb:-0}"
    total_kb=$((total_kb + kb))
    printf '    %-24s pid %-7s %6d MiB\n' "$name" "$pid" $((kb / 1024)) >&2
  done
  rss_kb=$total_kb

  kill "$app_pid" 2>/dev/null || true
  wait "$app_pid" 2>/dev/null || true
  rm -rf "$home"
  printf '%d %d\n' $(((t1 - t0) / 1000000)) $((rss_kb / 1024))
}

descendants() {
  local parent="$1" child
  for child in $(ps -o pid= --ppid "$parent"); do
    printf '%s\n' "$child"
    descendants "$child"
  done
}

median() {
  sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'
}

if [ -n "${COMFYFLEET_BENCH_INNER:-}" ]; then
  times=()
  rss=()
  for i in $(seq 1 "$RUNS"); do
    read -r t r < <(measure_once) || die "run $i failed"
    info "run $i: time_to_first_window_ms=$t idle_rss_mib=$r"
    times+=("$t")
    rss+=("$r")
  done
  printf 'time_to_first_window_ms=%s idle_rss_mib=%s\n' \
    "$(printf '%s\n' "${times[@]}" | median)" "$(printf '%s\n' "${rss[@]}" | median)"
  exit 0
fi

# Outer part: tools, build, a private X display, then the inner part in a keyring session.
missing=()
for pkg in xvfb xauth x11-utils xdotool procps; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = "installed" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  info "installing ${missing[*]}"
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ "$BUILD" -eq 1 ]; then
  "$ROOT/scripts/setup.sh"
  banner "build ($PROFILE)"
  npm --prefix "$ROOT/ui" run build
  if [ "$PROFILE" = release ]; then
    cargo build -p comfyfleet-app --features custom-protocol --release
  else
    cargo build -p comfyfleet-app --features custom-protocol
  fi
fi
[ -x "$APP" ] || die "$APP not found: build it (or drop --no-build)"

n=90
while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done
Xvfb ":$n" -screen 0 1400x1000x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill "$xvfb_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  DISPLAY=":$n" xdpyinfo >/dev/null 2>&1 && break
  sleep 0.05
done
DISPLAY=":$n" xdpyinfo >/dev/null 2>&1 || die "Xvfb :$n did not start"

banner "bench: $PROFILE app, $RUNS runs, ${IDLE}s idle"
inner=(--runs "$RUNS" --idle "$IDLE" --no-build)
[ "$PROFILE" = release ] && inner+=(--release)
DISPLAY=":$n" COMFYFLEET_BENCH_INNER=1 "$ROOT/scripts/with-keyring.sh" "$0" "${inner[@]}"
