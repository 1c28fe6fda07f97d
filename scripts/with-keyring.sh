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

# Prove a secret written by one process is readable by another in this session.
if command -v secret-tool >/dev/null; then
  probe="probe-$$-$RANDOM"
  printf '%s' "$probe" | secret-tool store --label="comfyfleet keyring probe" comfyfleet-probe "$$" \
    || { echo "keyring: could not store a secret in the Secret Service" >&2; exit 1; }
  got="$(sh -c "secret-tool lookup comfyfleet-probe $$")" || true
  if [ "$got" != "$probe" ]; then
    echo "keyring: a secret stored by one process was not readable by another (got '$got')" >&2
    exit 1
  fi
  secret-tool clear comfyfleet-probe "$$" || true
  echo "[comfyfleet] keyring: Secret Service ready (secret written by one process, read back by another)"
fi

exec "$@"
