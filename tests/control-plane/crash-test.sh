#!/usr/bin/env bash
# Self-test of cluster.sh's crash recovery: a crashed earlier run (stale PIDs, a
# leftover data directory, ports still in use, an `up` killed half-way) must not
# break the next `up`, and `down` must leave no process behind.
#
# It uses a cluster directory of its own (a fresh temporary one unless
# KSEAL_CLUSTER_DIR is set), so it does not disturb a cluster the tests share.
# Needs the cached binaries (run `cluster.sh build` first); takes about a minute.
# Exit 0 and "crash-test: all passed" on success.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster=$here/cluster.sh
own_dir=0
if [[ -z ${KSEAL_CLUSTER_DIR:-} ]]; then
  KSEAL_CLUSTER_DIR=$(mktemp -d /tmp/kseal-crash-test.XXXXXX)
  own_dir=1
fi
export KSEAL_CLUSTER_DIR
dir=$KSEAL_CLUSTER_DIR
components=(etcd kube-apiserver kube-controller-manager)
helpers=()

say() { printf 'crash-test: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

cleanup() {
  local rc=$? pid f
  if ((rc != 0)); then
    say "exit code $rc; last lines of the component logs:"
    for f in "$dir"/logs/*.log; do
      [[ -f $f ]] && { echo "== $f" && tail -n 15 "$f"; } >&2
    done
  fi
  for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null || true; done
  bash "$cluster" down >/dev/null 2>&1 || true
  if ((own_dir)); then rm -rf "$dir"; fi
}
trap cleanup EXIT

pid_of() { cat "$dir/pids/$1.pid"; }
alive() { kill -0 "$1" 2>/dev/null; }
up() { bash "$cluster" up | tail -n 1; }
expect_running() {
  bash "$cluster" status >/dev/null || fail "$1: status says not running"
  bash "$cluster" check-listen >/dev/null 2>&1 || fail "$1: non-loopback listener"
}
expect_gone() {
  local what=$1 pid
  shift
  for pid in "$@"; do
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && fail "$what: old process $pid still runs"
  done
  return 0
}
# Processes of any kind whose command line names our directory.
leftovers() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$dir/" && echo "${p#/proc/}"
  done
  return 0
}
# A process that listens on 127.0.0.1:$1 and is not ours (stands for a stranger
# squatting on a port of the crashed run).
squat() {
  python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(600)' "$1" &
  helpers+=("$!")
}

say "cluster dir $dir"
kubeconfig=$(up)
[[ -f $kubeconfig ]] || fail "up printed no kubeconfig"
expect_running "first up"

say "1. kill -9 every component, a squatter takes the old apiserver and etcd ports, rerun up"
old=()
for c in "${components[@]}"; do old+=("$(pid_of "$c")"); done
# shellcheck disable=SC1091
source "$dir/state.env"
kill -KILL "${old[@]}"
expect_gone "kill -9" "${old[@]}"
bash "$cluster" status >/dev/null 2>&1 && fail "status says running after kill -9"
if command -v python3 >/dev/null; then
  squat "$APISERVER_PORT"
  squat "$ETCD_PORT"
  sleep 0.5
fi
[[ $(up) == "$kubeconfig" ]] || fail "up after kill -9 printed another path"
expect_running "up after kill -9"

say "2. kill -9 only kube-apiserver: up must stop the stale etcd and controller-manager"
old=("$(pid_of etcd)" "$(pid_of kube-controller-manager)")
kill -KILL "$(pid_of kube-apiserver)"
up >/dev/null
expect_running "up after a partial crash"
expect_gone "partial crash" "${old[@]}"

say "3. state lost (PID files and state.env deleted) while the components run"
old=()
for c in "${components[@]}"; do old+=("$(pid_of "$c")"); done
rm -rf "$dir/pids" "$dir/state.env"
up >/dev/null
expect_running "up after lost state"
expect_gone "lost state (orphans)" "${old[@]}"

say "4. up killed with -9 half-way (after etcd started)"
bash "$cluster" down 2>/dev/null
bash "$cluster" up >/dev/null 2>&1 &
up_pid=$!
for _ in $(seq 100); do [[ -s $dir/pids/etcd.pid ]] && break; sleep 0.1; done
[[ -s $dir/pids/etcd.pid ]] || fail "etcd never started"
stale_etcd=$(pid_of etcd)
kill -KILL "$up_pid"
wait "$up_pid" 2>/dev/null || true
up >/dev/null
expect_running "up after an interrupted up"
expect_gone "interrupted up" "$stale_etcd"

say "5. down leaves no process behind"
bash "$cluster" down 2>/dev/null
bash "$cluster" status >/dev/null 2>&1 && fail "status says running after down"
left=$(leftovers)
[[ -z $left ]] || fail "processes left after down: $left"

say "all passed"
