#!/usr/bin/env bash
# The whole test suite: format, lints, advisories, unit/property/golden tests, end-to-end tests.
# Works on a fresh machine with the Rust toolchain: missing cargo tools are installed on first use.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo audit (offline advisory database)"
ADVISORY_DB="${KSEAL_ADVISORY_DB:-../shared/advisory-db}"
if [ -d "$ADVISORY_DB" ]; then
  # cargo-audit is installed only when there is a database to check against.
  if ! command -v cargo-audit >/dev/null 2>&1; then
    cargo install --locked cargo-audit
  fi
  cargo audit --db "$ADVISORY_DB" --no-fetch --deny warnings
else
  {
    echo "################################################################################"
    echo "# WARNING: cargo audit SKIPPED: no advisory database at $ADVISORY_DB"
    echo "# RustSec advisories were NOT checked. Set KSEAL_ADVISORY_DB to a clone of"
    echo "# https://github.com/rustsec/advisory-db to check them."
    echo "################################################################################"
  } >&2
fi

step "cargo test (unit, property, golden and CLI tests)"
cargo test --workspace --locked --exclude kseal-e2e

step "fuzz smoke run (fuzz/run.sh --smoke: every cargo-fuzz target for a few seconds)"
# Needs the nightly toolchain; builds go next to $CARGO_TARGET_DIR (cached in CI). KSEAL_SKIP_FUZZ=1
# skips it, e.g. on a machine without nightly.
if [ "${KSEAL_SKIP_FUZZ:-}" = 1 ]; then
  echo "KSEAL_SKIP_FUZZ=1: skipping the fuzz smoke run" >&2
else
  fuzz/run.sh --smoke
fi

step "end-to-end tests on a real kube-apiserver (tests/run-e2e.sh)"
# Builds or reuses kube-apiserver v1.20.2, starts one control plane for the whole run, stops it
# afterwards. With KSEAL_E2E_KUBECONFIG set, uses that cluster instead.
tests/run-e2e.sh --locked
