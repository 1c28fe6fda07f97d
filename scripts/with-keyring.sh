#!/usr/bin/env bash
# Run a command inside a private D-Bus session with an unlocked gnome-keyring, i.e. a real
# Secret Service as the keyring crate uses on Linux. Keyrings live in a throwaway
# XDG_DATA_HOME, so the user's own keyring is never touched.
#
#   scripts/with-keyring.sh cargo test --workspace
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

if [ -z "${COMFYFLEET_KEYRING_SESSION:-}" ]; then
  command -v dbus-run-session >/dev/null || { echo "dbus-run-session missing: run scripts/setup.sh" >&2; exit 1; }
  command -v gnome-keyring-daemon >/dev/null || { echo "gnome-keyring-daemon missing: run scripts/setup.sh" >&2; exit 1; }
  data_home="$(mktemp -d "${TMPDIR:-/tmp}/comfyfleet-keyring.XXXXXX")"
  trap 'rm -rf "$data_home"' EXIT
  rc=0
  COMFYFLEET_KEYRING_SESSION=1 XDG_DATA_HOME="$data_home" \
    dbus-run-session -- "$0" "$@" || rc=$?
  exit "$rc"
fi

# Inside the session: start and unlock the keyring (creates the default "login" collection).
printf '%s' "ci-keyring-pw" | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
# The daemon answers before the new keyring file is fully written; a client that starts reading it
# too early sees "an invalid or unrecognized format". Wait until the file is there and has stopped growing.
keyring_file="${XDG_DATA_HOME:-$HOME/.local/share}/keyrings/login.keyring"
last=-1
for _ in $(seq 1 50); do
  size="$(stat -c %s "$keyring_file" 2>/dev/null || echo 0)"
  [ "$size" -gt 0 ] && [ "$size" = "$last" ] && break
  last="$size"
  sleep 0.1
done

# Prove a secret written by one process is readable by another in this session.
if command -v secret-tool >/dev/null; then
  probe="probe-$$-$RANDOM"
  stored=0
  for attempt in 1 2 3; do
    if printf '%s' "$probe" | secret-tool store --label="comfyfleet keyring probe" comfyfleet-probe "$$"; then
      stored=1
      break
    fi
    echo "keyring: storing a probe secret failed (attempt $attempt); retrying" >&2
    sleep 1
  done
  [ "$stored" = 1 ] || { echo "keyring: could not store a secret in the Secret Service" >&2; exit 1; }
  got="$(sh -c "secret-tool lookup comfyfleet-probe $$")" || true
  if [ "$got" != "$probe" ]; then
    echo "keyring: a secret stored by one process was not readable by another (got '$got')" >&2
    exit 1
  fi
  secret-tool clear comfyfleet-probe "$$" || true
  echo "[comfyfleet] keyring: Secret Service ready (secret written by one process, read back by another)"
fi

exec "$@"
