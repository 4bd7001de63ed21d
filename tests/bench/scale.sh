#!/usr/bin/env bash
# Measure the controller at scale on the test control plane (docs/testing.md, "Benchmarks"):
# N SealedSecrets (default 1000, KSEAL_SCALE_N=…) of two items, sealed for K RSA-4096 keys
# (default 36, KSEAL_SCALE_KEYS=…), created while the controller is stopped; then, in one run,
# the cold start (time to every Secret, RSA decryptions, CPU, peak RSS), a restart (time to pass
# over all, 0 decryptions expected), one edit among N, peak RSS at 1,000 / N/2 / N objects, the
# RSA private-operation time on this machine and Bitnami's algorithm's cost for the same
# workload. Uses a release build of the controller and the control plane of
# $KSEAL_E2E_KUBECONFIG, or its own one (cluster.sh, state in $KSEAL_CLUSTER_DIR).
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
