#!/usr/bin/env bash
# Install what is missing, then run every test, fastest first, stopping at the first failing
# stage. The last line is the summary CI reads: "N passed, M failed" (counting stages).
# Benchmarks are separate: scripts/bench-*.sh.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

PASSED=0
FAILED=0
START_ALL=$SECONDS

summary() {
  printf '\n[comfyfleet] total %ds\n' "$((SECONDS - START_ALL))"
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
}

# stage NAME FUNCTION: run one stage; on failure print a banner and the summary, and exit.
stage() {
  local name="$1" fn="$2" t0=$SECONDS rc
  banner "STAGE: $name"
  # A subshell outside any `||` keeps `set -e` active inside the stage's function.
  set +e
  (
    set -e
    "$fn"
  ) </dev/null
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    PASSED=$((PASSED + 1))
    info "PASS: $name ($((SECONDS - t0))s)"
  else
    FAILED=$((FAILED + 1))
    banner "FAILED: $name (exit $rc after $((SECONDS - t0))s)"
    summary
    exit 1
  fi
}

setup() {
  "$ROOT/scripts/setup.sh"
}

rust_fmt() {
  if ! cargo fmt --version >/dev/null 2>&1; then
    info "WARNING: rustfmt is not installed; skipping the formatting check"
    return 0
  fi
  cargo fmt --all --check
}

# comfyfleet-core must never depend on tauri (normal or build dependencies).
core_has_no_tauri() {
  local out rc=0
  out="$(cargo tree -p comfyfleet-core -e normal,build -i tauri 2>&1)" || rc=$?
  if [ "$rc" -eq 0 ] && grep -q '^tauri v' <<<"$out"; then
    printf '%s\n' "$out"
    echo "comfyfleet-core depends on tauri (see the inverted tree above): move that code to the shell." >&2
    return 1
  fi
  if [ "$rc" -ne 0 ] && ! grep -qiE 'did not match any packages|nothing to print' <<<"$out"; then
    printf '%s\n' "$out"
    echo "cargo tree failed for another reason than 'tauri not in the graph'" >&2
    return 1
  fi
  # Control: the same query on the shell must find tauri, so an empty answer above means something.
  if ! cargo tree -p comfyfleet-app -e normal,build -i tauri --depth 0 2>/dev/null | grep -q '^tauri v'; then
    echo "control failed: 'cargo tree -i tauri' did not find tauri under comfyfleet-app either, so the check proves nothing" >&2
    return 1
  fi
  info "proved: tauri is in comfyfleet-app's dependency graph but not in comfyfleet-core's (normal+build)"
}

ui_typecheck_and_test() {
  npm --prefix ui run typecheck
  npm --prefix ui test
}

# Benchmarks are built here (so they cannot rot) but not run: they take minutes and measure this machine, not the
# code's correctness; run them with the README's `cargo bench` commands. (`--all-targets` would run them too.)
rust_tests() {
  "$ROOT/scripts/with-keyring.sh" cargo test --workspace --lib --bins --tests
  cargo test --workspace --benches --no-run
}

# ==== BINDINGS DRIFT ====
# ui/src/bindings.ts is generated from the Rust commands (tauri-specta) and committed; it must
# match what the Rust code generates now. The shell's test `bindings_are_up_to_date` regenerates
# it into a temp file and compares (fix drift with: UPDATE_BINDINGS=1 cargo test -p comfyfleet-app
# bindings). In CI, git also proves no earlier stage rewrote the committed file.
bindings_drift() {
  local file="ui/src/bindings.ts"
  [ -f "$file" ] || { echo "$file is missing: run UPDATE_BINDINGS=1 cargo test -p comfyfleet-app bindings" >&2; return 1; }
  # --workspace: the same feature set as the test stage, so nothing is compiled again.
  env -u UPDATE_BINDINGS cargo test --workspace --lib bindings_are_up_to_date -- --exact tests::bindings_are_up_to_date
  # In CI (a fresh clone) the work tree must still equal the commit: nothing rewrote the file.
  if [ "${CI:-}" = "true" ] && git ls-files --error-unmatch "$file" >/dev/null 2>&1; then
    git diff --exit-code -- "$file"
  fi
  info "bindings: $file matches the Rust commands"
}

build_for_e2e() {
  npm --prefix ui run build
  # One workspace build: its feature set is the test stage's, so mostly tauri (custom-protocol) is compiled again.
  cargo build --workspace --features comfyfleet-app/custom-protocol
}

e2e() {
  "$ROOT/scripts/with-keyring.sh" \
    xvfb-run -a -s "-screen 0 1400x1000x24 -nolisten tcp" \
    npm --prefix tests/e2e test
}

stage "setup (install what is missing)" setup
stage "rust formatting (cargo fmt --check)" rust_fmt
stage "architecture: comfyfleet-core does not depend on tauri" core_has_no_tauri
stage "UI: typecheck + component tests (vitest)" ui_typecheck_and_test
stage "Rust tests in a real Secret Service session" rust_tests
stage "bindings drift (ui/src/bindings.ts)" bindings_drift
stage "build app, testkit and CLI for E2E" build_for_e2e
stage "E2E: WebdriverIO + tauri-driver on the built app (Xvfb)" e2e
summary
