#!/usr/bin/env bash
# Admission webhook latency: the controller's admission router on its TLS server (release
# build), one keep-alive TLS connection as the API server keeps, N AdmissionReviews per case
# (default 200, or the first argument): an admitted 2-item RSA-4096 SealedSecret and three
# refusals (moved, another cluster's key, a bad template), with 1 and with 13 keys. Prints JSON
# with the median and p99 of each case. No cluster needed (controller/examples/admission_bench.rs).
#
# Usage: tests/bench/admission.sh [N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
exec cargo run --quiet --release -p kseal-controller --example admission_bench -- "$@"
