#!/usr/bin/env bash
# A seeded random schedule of faults (API server and etcd restarts, controller SIGKILL,
# SIGTERM and SIGSTOP, replica kills) against a workload that never stops, then the fault
# tests' end checks (docs/testing.md, "Faults"). CI runs one minute of it inside ./test.sh.
#
# Usage: tests/chaos.sh [--minutes N] [--seed S]   (defaults: 10 minutes, seed 42)
set -euo pipefail
minutes=10
seed=42
while (($#)); do
  case $1 in
    --minutes) minutes=$2; shift ;;
    --seed) seed=$2; shift ;;
    *) echo "usage: tests/chaos.sh [--minutes N] [--seed S]" >&2; exit 2 ;;
  esac
  shift
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export KSEAL_CHAOS_MINUTES=$minutes KSEAL_CHAOS_SEED=$seed
exec "$here/run-e2e.sh" faults::chaos_schedule --no-capture
