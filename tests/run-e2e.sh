#!/usr/bin/env bash
# Run kseal's end-to-end tests (package kseal-e2e) against ONE control plane for
# the whole run, and stop it afterwards.
#
# Usage: tests/run-e2e.sh [extra arguments for the test runner]
#
# - Without KSEAL_E2E_KUBECONFIG: `control-plane/cluster.sh up` (builds the
#   binaries on first use, reuses the cache later), run the tests, and
#   `cluster.sh down` on exit, also on failure or Ctrl-C. Set
#   KSEAL_E2E_KEEP_CLUSTER=1 to leave it running for debugging.
# - With KSEAL_E2E_KUBECONFIG=/path/to/kubeconfig: run the tests against that
#   cluster (kind, k3d, ...); nothing is started or stopped.
# - First builds the binaries the tests spawn (kseal-controller, kseal), with
#   --locked if that is among the arguments.
# - KSEAL_E2E_RUNNER=nextest|cargo picks the runner; default: cargo-nextest if
#   installed (one process per test), else `cargo test`.
# - KSEAL_E2E_NODE=1 starts the control plane with a node (`cluster.sh up
#   --node`: scheduler, containerd, kubelet, kube-proxy), so Pods run; the
#   node:: tests skip themselves without it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster=$here/control-plane/cluster.sh

# The tests spawn these binaries (found next to the test executables, or through
# KSEAL_CONTROLLER_BIN): build them first, with --locked when the runner gets it.
build_args=()
for arg in "$@"; do
  if [[ $arg == --locked ]]; then build_args+=(--locked); fi
done
(cd "$here" && cargo build ${build_args[@]+"${build_args[@]}"} -p kseal-controller -p kseal --bins)

if [[ -z ${KSEAL_E2E_KUBECONFIG:-} ]]; then
  teardown() {
    if [[ ${KSEAL_E2E_KEEP_CLUSTER:-0} == 1 ]]; then
      echo "run-e2e: leaving the control plane running (stop it with: $cluster down)" >&2
    else
      bash "$cluster" down || echo "run-e2e: cluster.sh down failed" >&2
    fi
  }
  trap teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  started=$SECONDS
  up_args=()
  if [[ ${KSEAL_E2E_NODE:-0} == 1 ]]; then up_args+=(--node); fi
  kubeconfig=$(bash "$cluster" up ${up_args[@]+"${up_args[@]}"} | tail -n 1)
  echo "run-e2e: control plane up after $((SECONDS - started))s; admin kubeconfig: $kubeconfig" >&2
else
  echo "run-e2e: using the cluster of KSEAL_E2E_KUBECONFIG=$KSEAL_E2E_KUBECONFIG" >&2
fi

runner=${KSEAL_E2E_RUNNER:-auto}
if [[ $runner == auto ]]; then
  if cargo nextest --version >/dev/null 2>&1; then runner=nextest; else runner=cargo; fi
fi
cd "$here"
case $runner in
  nextest) cargo nextest run -p kseal-e2e --no-fail-fast "$@" ;;
  cargo) cargo test -p kseal-e2e --no-fail-fast "$@" ;;
  *) echo "run-e2e: KSEAL_E2E_RUNNER must be nextest or cargo, not $runner" >&2; exit 2 ;;
esac
