#!/usr/bin/env bash
# Measure the controller at scale on the test control plane: N SealedSecrets (default 1000,
# KSEAL_SCALE_N=…) created while the controller is stopped, then the time until every Secret
# exists, the controller's peak RSS and its RSA private-key operations; then the same after a
# restart (expected: no decryption). Uses a release build of the controller.
#
# Usage: tests/bench/scale.sh            (prints a JSON report; also written to
#                                          $KSEAL_SCALE_REPORT, default target/scale-report.json)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -p kseal-controller
export KSEAL_CONTROLLER_BIN=$target/release/kseal-controller
export KSEAL_SCALE_REPORT=${KSEAL_SCALE_REPORT:-$target/scale-report.json}
if [[ -z ${KSEAL_E2E_KUBECONFIG:-} ]]; then
  trap 'bash tests/control-plane/cluster.sh down >/dev/null || true' EXIT
  KSEAL_E2E_KUBECONFIG=$(bash tests/control-plane/cluster.sh up | tail -n 1)
  export KSEAL_E2E_KUBECONFIG
fi
cargo test -p kseal-e2e --test e2e scale:: -- --ignored --nocapture
echo "report: $KSEAL_SCALE_REPORT" >&2
