# shellcheck shell=bash
# Shared by the scripts in this folder: repo root, build cache, PATH, sudo and banners.
# Source it; it does not change shell options.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

# One build cache outside the work tree, so fresh clones (CI) and repeat runs build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/comfyfleet/target}"
mkdir -p "$CARGO_TARGET_DIR"

# cargo installs (tauri-driver) land here; rustup puts cargo here too.
case ":$PATH:" in
  *":$HOME/.cargo/bin:"*) ;;
  *) export PATH="$HOME/.cargo/bin:$PATH" ;;
esac

export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

# shellcheck disable=SC2034 # used by the scripts that source this file
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
else
  SUDO=(sudo)
fi

banner() {
  printf '\n==================== %s ====================\n' "$*"
}

info() {
  printf '[comfyfleet] %s\n' "$*"
}

die() {
  printf '[comfyfleet] ERROR: %s\n' "$*" >&2
  exit 1
}
