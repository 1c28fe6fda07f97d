#!/usr/bin/env bash
# Install what ComfyFleet needs to build, run and test on Debian/Ubuntu. Idempotent and fast
# on reruns: each step checks first and does nothing when its part is already there.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

APT_PACKAGES=(
  # Tauri (WebKitGTK 4.1, GTK 3, tray, SVG, openssl) and the C toolchain
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev
  build-essential libssl-dev libxdo-dev pkg-config libdbus-1-dev curl
  # End-to-end tests: a virtual display, the WebKit WebDriver, a session bus and a Secret Service
  xvfb xauth webkit2gtk-driver dbus-x11 gnome-keyring libsecret-tools
  # Installer tests: a real Python virtual environment with pip (the local ComfyUI runs in one)
  python3 python3-venv
)

apt_missing() {
  local pkg status
  for pkg in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [ "$status" = "installed" ] || printf '%s\n' "$pkg"
  done
}

setup_apt() {
  local missing
  mapfile -t missing < <(apt_missing)
  if [ "${#missing[@]}" -eq 0 ]; then
    info "system packages: all present"
    return
  fi
  command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get: install them with your package manager"
  info "system packages: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

setup_rust() {
  if ! command -v cargo >/dev/null; then
    die "cargo not found. Install Rust with rustup (https://rustup.rs), open a new shell, and rerun this script."
  fi
  info "rust: $(cargo --version)"
  if ! cargo fmt --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
    rustup component add rustfmt >/dev/null 2>&1 || info "rust: rustfmt unavailable (formatting check will be skipped)"
  fi
}

setup_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "node/npm not found. Install Node.js 20 or newer (with npm) and rerun this script."
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js $(node --version) is too old: ComfyFleet's UI needs Node.js 20 or newer."
  info "node: $(node --version), npm $(npm --version)"
}

# npm ci when node_modules is missing or package-lock.json changed since the last install.
npm_install() {
  local dir="$1" stamp want
  [ -f "$dir/package.json" ] || { info "npm: $dir/package.json not found, skipping"; return; }
  stamp="$dir/node_modules/.comfyfleet-lock.sha256"
  if [ -f "$dir/package-lock.json" ]; then
    want="$(sha256sum "$dir/package-lock.json" "$dir/package.json" | sha256sum | cut -d' ' -f1)"
    if [ -d "$dir/node_modules" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
      info "npm: ${dir#"$ROOT"/} up to date"
      return
    fi
    info "npm: installing ${dir#"$ROOT"/} (npm ci)"
    if ! (cd "$dir" && npm ci --no-audit --no-fund); then
      # npm ci refuses a lock file that is out of sync with package.json; install anyway so the
      # run can go on, but say loudly that the committed lock needs fixing.
      info "WARNING: npm ci failed in ${dir#"$ROOT"/}: its package-lock.json is out of sync with package.json."
      info "WARNING: falling back to npm install --no-save; fix it with 'npm install' there and commit package-lock.json."
      (cd "$dir" && npm install --no-save --no-audit --no-fund)
    fi
    printf '%s\n' "$want" >"$stamp"
  else
    info "npm: ${dir#"$ROOT"/} has no package-lock.json, running npm install"
    (cd "$dir" && npm install --no-audit --no-fund)
  fi
}

setup_tauri_driver() {
  if command -v tauri-driver >/dev/null; then
    info "tauri-driver: $(command -v tauri-driver)"
    return
  fi
  info "tauri-driver: installing (cargo install tauri-driver --locked)"
  cargo install tauri-driver --locked
}

banner "setup"
setup_apt
setup_rust
setup_node
npm_install "$ROOT/ui"
npm_install "$ROOT/tests/e2e"
setup_tauri_driver
command -v WebKitWebDriver >/dev/null || die "WebKitWebDriver not found (package webkit2gtk-driver)"
info "setup done (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
