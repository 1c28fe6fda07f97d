#!/usr/bin/env bash
# Install what is missing, build the UI and the desktop app, and launch it.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$ROOT/scripts/setup.sh"
cd "$ROOT"

banner "build UI"
npm --prefix ui run build

banner "build app"
cargo build -p comfyfleet-app --features custom-protocol

banner "launch"
info "starting $CARGO_TARGET_DIR/debug/comfyfleet-app"
exec "$CARGO_TARGET_DIR/debug/comfyfleet-app" "$@"
