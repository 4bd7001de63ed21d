#!/usr/bin/env bash
# A real, throw-away Kubernetes control plane (etcd + kube-apiserver +
# kube-controller-manager v1.20.2) for kseal's end-to-end tests.
#
# Usage: cluster.sh build|up [--node] | down|status|env|check-listen
#        cluster.sh image ARCHIVE [NAME] | probe-image
#        cluster.sh restart COMPONENT [--down-for SECONDS] | compact
#
#   build         install the Debian packages needed and build kube-apiserver and
#                 kube-controller-manager from Debian's `kubernetes` source
#                 package into the cache (no-op when the cache has them). With
#                 --node also kube-scheduler, kubelet, kube-proxy and pause.
#   up            build if needed, start etcd + apiserver + controller-manager on
#                 127.0.0.1 with free ports, wait until ready, and print the admin
#                 kubeconfig's path as the LAST line of stdout. On a running
#                 cluster it only prints the path again. Safe to call concurrently.
#   up --node     the same plus a node that runs Pods: kube-scheduler, containerd
#                 + runc, kubelet and kube-proxy, Pods on bridge kseal-br0
#                 (10.232.0.0/24, KSEAL_POD_SUBNET), the apiserver reachable from
#                 them through the `kubernetes` Service. One node per machine.
#   down          stop exactly the processes `up` started (by PID) and remove the
#                 cluster's data; with a node also its containers, mounts, network
#                 namespaces, bridge, iptables chains, cgroups and changed sysctls.
#                 Safe to call when nothing runs.
#   status        exit 0 if the cluster runs and the apiserver is ready, 1 if not.
#   env           print the state (ports, PIDs, paths) as shell assignments.
#   check-listen  fail unless every socket our processes listen on is loopback
#                 (with a node: loopback or exactly the bridge address).
#   image [ARCHIVE [NAME]]
#                 without ARCHIVE: build the controller image from the working tree
#                 (controller/image/build.sh, a release build) and import it. Else
#                 import an OCI (or docker-save) image archive into the node's
#                 containerd. Prints the image reference as the LAST line. An OCI
#                 archive whose index names its images by tag only is imported
#                 as NAME:<tag> (default kseal.local/<file name>:<tag>).
#   probe-image   build and import the node's test image (node/probe.c, static)
#                 and print its reference last.
#   restart COMPONENT [--down-for SECONDS]
#                 kill -9 one component (etcd, kube-apiserver,
#                 kube-controller-manager; with a node also apiserver-relay,
#                 kube-scheduler, containerd, kubelet, kube-proxy), wait SECONDS
#                 (default 0), start it again with the very same command line
#                 (ports, certificates, data, log) and wait until it is healthy.
#                 Clients keep their kubeconfig. Prints the seconds it was down.
#   compact       compact etcd to its current revision now: every watch that
#                 resumes from an older resourceVersion gets 410 Gone (with the
#                 apiserver's watch cache off, see KSEAL_APISERVER_FLAGS).
#
# Progress and diagnostics go to stderr; stdout carries only results.
#
# Environment:
#   KSEAL_CLUSTER_DIR  state directory (certs, kubeconfigs, etcd data, logs, PIDs);
#                      default /tmp/kseal-cluster. One cluster per directory.
#   KSEAL_CACHE_DIR    where built binaries are cached, keyed by version;
#                      default /var/cache/kseal (or ~/.cache/kseal if unwritable).
#   KSEAL_READY_TIMEOUT  seconds `up` waits for readiness (default 120).
#   KSEAL_POD_SUBNET   the node's pod subnet, a /24 (default 10.232.0.0/24).
#   KSEAL_APISERVER_FLAGS  extra kube-apiserver flags for `up`, split on spaces,
#                      e.g. "--etcd-compaction-interval=5s --watch-cache=false"
#                      so that watches expire (410 Gone) within a test.
set -Eeuo pipefail
# set -e ends the script silently; say where.
trap 'printf "[cluster.sh] error: line %s: \"%s\" failed (exit %s)\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

readonly K8S_VERSION=1.20.2
readonly LOOPBACK=127.0.0.1
# The ClusterIP range of Services. Without --node no Service traffic is ever
# routed (no kubelet, no kube-proxy) and it only has to be a valid range; with
# --node, kube-proxy DNATs it and Pods route it via the bridge.
readonly SERVICE_CIDR=10.0.0.0/24
readonly SERVICE_IP=10.0.0.1
readonly SA_ISSUER=https://kubernetes.default.svc.cluster.local

CLUSTER_DIR=${KSEAL_CLUSTER_DIR:-/tmp/kseal-cluster}
if [[ -n ${KSEAL_CACHE_DIR:-} ]]; then
  CACHE_ROOT=$KSEAL_CACHE_DIR
elif mkdir -p /var/cache/kseal 2>/dev/null && [[ -w /var/cache/kseal ]]; then
  CACHE_ROOT=/var/cache/kseal
else
  CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/kseal
fi
BIN_DIR=$CACHE_ROOT/k8s-v$K8S_VERSION
STAMP=$BIN_DIR/stamp
NODE_STAMP=$BIN_DIR/stamp-node
# 1 with --node (`build --node`, `up --node`): also the node's components.
NODE=0
READY_TIMEOUT=${KSEAL_READY_TIMEOUT:-120}

PKI=$CLUSTER_DIR/pki
PIDS=$CLUSTER_DIR/pids
LOGS=$CLUSTER_DIR/logs
STATE=$CLUSTER_DIR/state.env
ADMIN_KUBECONFIG=$CLUSTER_DIR/admin.kubeconfig
# Marks a directory as ours (see take_lock).
readonly MARKER=.kseal-cluster
# Components in start order; `down` stops them in reverse. COMPONENTS is what
# this cluster runs: the control plane, plus NODE_COMPONENTS with --node.
readonly CONTROL_PLANE_COMPONENTS=(etcd kube-apiserver kube-controller-manager)
readonly NODE_COMPONENTS=(apiserver-relay kube-scheduler containerd kubelet kube-proxy)
readonly ALL_COMPONENTS=("${CONTROL_PLANE_COMPONENTS[@]}" "${NODE_COMPONENTS[@]}")
COMPONENTS=("${CONTROL_PLANE_COMPONENTS[@]}")

# The node (--node). One per machine (kube-proxy's iptables chains are global).
NODE_NAME=kseal-node
BRIDGE=kseal-br0
readonly NODE_CGROUP=kseal-node
readonly CNI_NETWORK=kseal-pods
readonly NODE_RUN=/run/kseal-node
POD_CIDR=${KSEAL_POD_SUBNET:-10.232.0.0/24}
[[ $POD_CIDR =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] || { echo "KSEAL_POD_SUBNET must be a.b.c.0/24" >&2; exit 2; }
readonly POD_PREFIX=${BASH_REMATCH[1]}
# The bridge's address: the pods' gateway, the node's InternalIP, the apiserver's
# advertise address (the `kubernetes` Endpoints) and the only non-loopback
# address anything of ours listens on.
BRIDGE_IP=$POD_PREFIX.1
NODE_DIR=$CLUSTER_DIR/node
CONTAINERD_SOCK=$NODE_DIR/containerd/containerd.sock
PAUSE_IMAGE=kseal.local/pause:3.4 # the tag: build/pause/Makefile's TAG, see start_cluster
readonly PROBE_IMAGE=kseal.local/kseal-probe:1
SNAPSHOTTER=overlayfs

log() { printf '[cluster.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------

have_binaries() {
  [[ -f $STAMP && -x $BIN_DIR/kube-apiserver && -x $BIN_DIR/kube-controller-manager ]]
}

# The node's binaries (`up --node`), built separately and only when asked for, so
# a plain `build` costs what it did before (see docs/testing.md for the timings).
have_node_binaries() {
  [[ -f $NODE_STAMP && -x $BIN_DIR/kube-scheduler && -x $BIN_DIR/kubelet && -x $BIN_DIR/kube-proxy &&
    -x $BIN_DIR/pause && -f $BIN_DIR/pause.c ]]
}

# The pause binary from the kubernetes tree ($1), static, as build/pause/Makefile
# builds it (TAG there is its version).
build_pause() {
  local src=$1 tag
  tag=$(sed -nE 's/^TAG[[:space:]]*[?:]?=[[:space:]]*([^[:space:]]+).*/\1/p' "$src/build/pause/Makefile" | head -n1)
  [[ -n $tag ]] || tag=3.4.1
  log "gcc -static build/pause/linux/pause.c (pause $tag)"
  gcc -Os -Wall -Werror -static -DVERSION="v$tag-kseal" -o "$src/pause" "$src/build/pause/linux/pause.c" ||
    die "compiling pause.c failed"
  strip "$src/pause"
  mkdir -p "$BIN_DIR"
  cp "$src/build/pause/linux/pause.c" "$BIN_DIR/pause.c"
  echo "$tag" >"$BIN_DIR/pause.tag"
  mv -f "$src/pause" "$BIN_DIR/pause"
}

# Install the Debian packages in "$@" that are not installed yet.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || die "need root to install: ${missing[*]} (or install them yourself)"
  log "installing Debian packages: ${missing[*]}"
  apt_update_once
  # policy-rc.d stops etcd-server's maintainer scripts from starting a system etcd.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  local rc=0
  # Wait for another apt (other agents, CI) instead of failing on its lock.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
    --no-install-recommends "${missing[@]}" >&2 || rc=$?
  ((created_policy)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get install failed"
}

APT_UPDATED=0
apt_update_once() {
  ((APT_UPDATED)) && return 0
  log "apt-get update"
  apt-get update -q >&2 || die "apt-get update failed"
  APT_UPDATED=1
}

# `apt-get source` needs deb-src entries. Add them, mirroring the existing `deb`
# entries, in a file of our own (the system's files are left untouched).
ensure_deb_src() {
  if apt-cache showsrc kubernetes 2>/dev/null | grep -qE "^Version: (.*really)?${K8S_VERSION//./\\.}-"; then
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "need root to add deb-src entries to apt's sources"
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f && $f != */kseal-deb-src.sources ]] || continue
    grep -qE '^URIs:.*/debian' "$f" || continue
    sed -E 's/^Types:.*/Types: deb-src/' "$f"
    echo
  done >/etc/apt/sources.list.d/kseal-deb-src.sources
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -nE 's#^deb (.*/debian.*)#deb-src \1#p' >/etc/apt/sources.list.d/kseal-deb-src.list || true
  [[ -s /etc/apt/sources.list.d/kseal-deb-src.list ]] || rm -f /etc/apt/sources.list.d/kseal-deb-src.list
  [[ -s /etc/apt/sources.list.d/kseal-deb-src.sources ]] || rm -f /etc/apt/sources.list.d/kseal-deb-src.sources
  log "added deb-src entries; apt-get update"
  APT_UPDATED=0
  apt_update_once
  apt-cache showsrc kubernetes 2>/dev/null | grep -qE "^Version: (.*really)?${K8S_VERSION//./\\.}-" ||
    die "Debian source package kubernetes $K8S_VERSION not found (need bookworm's deb-src)"
}

# Build the kubernetes commands "${@:3}" (e.g. cmd/kube-apiserver) from Debian's
# source package into $BIN_DIR and write the stamp file $1; $2 names them in
# messages. Serialised with the other builds by one lock; returns at once when
# have_$2 says the cache has them (checked again under the lock).
k8s_make() {
  local stamp=$1 what=$2
  shift 2
  local cmds=("$@")
  "have_$what" && return 0
  mkdir -p "$CACHE_ROOT"
  exec 8>"$CACHE_ROOT/k8s-v$K8S_VERSION.lock"
  log "waiting for the build lock $CACHE_ROOT/k8s-v$K8S_VERSION.lock"
  flock 8
  "have_$what" && { exec 8>&-; return 0; } # someone else built it meanwhile

  local t0 t_src t_go
  t0=$(now)
  apt_install ca-certificates dpkg-dev golang-go make rsync etcd-server openssl curl iproute2 \
    golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
  ensure_deb_src

  local work=$CACHE_ROOT/build-$what-v$K8S_VERSION
  rm -rf "$work"
  mkdir -p "$work"
  log "fetching and unpacking Debian's kubernetes $K8S_VERSION source package into $work"
  (cd "$work" && apt-get source -q --download-only kubernetes >&2) ||
    die "apt-get source kubernetes failed"
  local dsc
  dsc=$(find "$work" -maxdepth 1 -name "kubernetes_*$K8S_VERSION-*.dsc" | head -n1)
  [[ -n $dsc ]] || die "apt-get source fetched no kubernetes $K8S_VERSION (see $work)"
  (cd "$work" && dpkg-source --no-check -x "$dsc" src >&2) || die "dpkg-source -x failed"
  local src=$work/src
  [[ -d $src/vendor && -d $src/cmd/kube-apiserver ]] || die "unexpected source layout in $src"
  t_src=$(elapsed "$t0")

  # The vendored reflect2 1.0.1 / json-iterator 1.1.10 crash under Go >= 1.18 (on
  # the first custom resource); Debian's packaged versions are fixed.
  local pkg from
  for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    from=/usr/share/gocode/src/$pkg
    [[ -d $from ]] || die "$from missing (Debian golang-*-dev package)"
    rm -rf "${src:?}/vendor/$pkg"
    mkdir -p "$src/vendor/$pkg"
    find "$from" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
      -exec cp {} "$src/vendor/$pkg/" \;
  done

  # Kubernetes' own build (GOPATH mode, as hack/lib/init.sh sets GO111MODULE=off):
  # it first generates the code the tarball lacks (OpenAPI definitions, ...), and
  # stamps the version from the archive's export-subst values. Offline: everything
  # comes from vendor/.
  local build_date t1 cmd names=()
  for cmd in "${cmds[@]}"; do names+=("${cmd##*/}"); done
  build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  t1=$(now)
  mkdir -p "$work/home"
  log "make WHAT='${cmds[*]}' (offline, vendored; takes minutes)"
  (cd "$src" && env -u GOROOT -u GOPATH -u GOBIN GO111MODULE=off GOFLAGS= GOPROXY=off \
    HOME="$work/home" make WHAT="${cmds[*]}" >&2) ||
    die "make failed (see above)"
  local out=$src/_output/local/bin/linux/amd64
  for cmd in "${names[@]}"; do
    [[ -x $out/$cmd ]] || die "make did not produce $out/$cmd"
  done
  t_go=$(elapsed "$t1")
  "$out/${names[0]}" --version >&2
  [[ $what != node_binaries ]] || build_pause "$src"

  mkdir -p "$BIN_DIR"
  for cmd in "${names[@]}"; do mv -f "$out/$cmd" "$BIN_DIR/"; done
  {
    echo "version=v$K8S_VERSION"
    echo "built=$build_date"
    echo "binaries=${names[*]}"
    echo "go=$(go version)"
    echo "source_seconds=$t_src"
    echo "make_seconds=$t_go"
    echo "total_seconds=$(elapsed "$t0")"
  } >"$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
  rm -rf "$work"
  log "built ${names[*]} v$K8S_VERSION into $BIN_DIR" \
    "(fetch+unpack ${t_src}s, make ${t_go}s, total $(elapsed "$t0")s)"
  exec 8>&-
}

cmd_build() {
  k8s_make "$STAMP" binaries cmd/kube-apiserver cmd/kube-controller-manager
  if ((NODE)); then
    apt_install gcc libc6-dev
    k8s_make "$NODE_STAMP" node_binaries cmd/kube-scheduler cmd/kubelet cmd/kube-proxy
  fi
}

# ---------------------------------------------------------------------------
# Process bookkeeping
# ---------------------------------------------------------------------------

# Print the PID recorded for component $1 if that process still runs AND is the one
# we started (its command line names our state directory); PIDs get reused.
# Whether the process started for component $1 has ended (gone, or a zombie). Unlike
# `! live_pid`, this does not look at the command line: right after `spawn`, until setsid has
# exec'd the component (which can take a while on a loaded machine), /proc/PID/cmdline is still
# the shell's.
exited() {
  local pid state
  pid=$(<"$PIDS/$1.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  [[ -r /proc/$pid/stat ]] || return 0
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 0
  [[ $state == Z || $state == X ]]
}

live_pid() {
  local f=$PIDS/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CLUSTER_DIR/" || return 1
  echo "$pid"
}

# Stop every component we recorded, newest first: TERM, then KILL after a grace period.
stop_all() {
  local i c pid pids=()
  for ((i = ${#ALL_COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${ALL_COMPONENTS[i]}
    if pid=$(live_pid "$c"); then
      log "stopping $c (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  rm -f "$PIDS"/*.pid 2>/dev/null || true
  # Orphans whose PID file is gone (say, someone deleted the state directory under
  # a running cluster): still ours if their arguments name our state directory.
  local orphans
  orphans=$(orphan_pids)
  if [[ -n $orphans ]]; then
    log "killing orphaned components of $CLUSTER_DIR: $orphans"
    # shellcheck disable=SC2086
    kill -KILL $orphans 2>/dev/null || true
  fi
  node_cleanup
}

# PIDs of our components' processes (and containerd's shims) whose command line
# names our state directory.
orphan_pids() {
  local dir cmdline exe
  for dir in /proc/[0-9]*; do
    cmdline=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
    exe=${cmdline%% *}
    case ${exe##*/} in
      etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | containerd) ;;
      # The relay's lock file and the shims' containerd address name our directory.
      socat | containerd-shim-runc-v2) ;;
      *) continue ;;
    esac
    if [[ $cmdline == *" -"*"$CLUSTER_DIR/"* ]]; then printf '%s ' "${dir#/proc/}"; fi
  done
  return 0
}

# ---------------------------------------------------------------------------
# Ports, certificates, kubeconfigs
# ---------------------------------------------------------------------------

TAKEN_PORTS=" "
# A TCP port nobody listens on, below the ephemeral range so outgoing connections
# are unlikely to grab it before our process binds it.
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ $TAKEN_PORTS == *" $p "* ]] && continue
    if [[ -z $(ss -Htan "( sport = :$p )" 2>/dev/null) ]]; then
      TAKEN_PORTS+="$p "
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

# Sign a leaf certificate with our CA. $1 name, $2 subject, $3 extendedKeyUsage,
# $4 optional subjectAltName.
issue_cert() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  local ext=$PKI/$name.ext
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
    [[ -n $san ]] && echo "subjectAltName=$san"
  } >"$ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

make_pki() {
  mkdir -p "$PKI"
  (
    umask 077
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=kseal-e2e-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/ca.crt" 2>/dev/null
    issue_cert apiserver "/CN=kube-apiserver" serverAuth \
      "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:$LOOPBACK,IP:$SERVICE_IP${APISERVER_EXTRA_SANS:-}"
    issue_cert controller-manager-serving "/CN=kube-controller-manager" serverAuth \
      "DNS:localhost,IP:$LOOPBACK"
    # system:masters bypasses RBAC: the admin identity of the tests.
    issue_cert admin "/O=system:masters/CN=kseal-e2e-admin" clientAuth
    # The controller manager's own identity, bound by the bootstrap RBAC policy.
    issue_cert controller-manager "/CN=system:kube-controller-manager" clientAuth
    # Service-account token signing key (RS256 is what every verifier supports).
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  )
}

# Write a kubeconfig with embedded client certificate $2 to file $1.
write_kubeconfig() {
  local file=$1 cert=$2 user=$3
  local old_umask
  old_umask=$(umask)
  umask 077
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kseal-e2e
  cluster:
    server: https://$LOOPBACK:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$cert.crt")
    client-key-data: $(base64 -w0 <"$PKI/$cert.key")
contexts:
- name: kseal-e2e
  context:
    cluster: kseal-e2e
    user: $user
    namespace: default
current-context: kseal-e2e
EOF
  umask "$old_umask"
}

# ---------------------------------------------------------------------------
# Start / readiness
# ---------------------------------------------------------------------------

# Start component $1 as "$@"[1:] in its own session, logging to $LOGS/$1.log.
spawn() {
  local name=$1
  shift
  # setsid: the process does not belong to the caller's process group, so a test
  # runner's Ctrl-C does not kill it mid-run; `down` stops it by PID.
  # Close the lock file descriptors: a daemon inheriting them would hold the
  # cluster (and build) lock for as long as it runs.
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 6>&- 7>&- 8>&- 9>&- &
  echo $! >"$PIDS/$name.pid"
  # The exact command, for `restart` (same ports, certificates, data and log).
  printf '%s\0' "$@" >"$PIDS/$name.cmd"
  log "started $name (pid $!), log: $LOGS/$name.log"
}

admin_curl() {
  curl -sS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$LOOPBACK:$APISERVER_PORT$1"
}

# Wait until "$2..." succeeds; $1 names the thing for messages. Fails fast when a
# component we started has died.
wait_for() {
  local what=$1
  shift
  local deadline=$((SECONDS + READY_TIMEOUT)) c
  until "$@" >/dev/null 2>&1; do
    for c in "${ALL_COMPONENTS[@]}"; do
      if [[ -f $PIDS/$c.pid ]] && exited "$c"; then
        log "$c exited while waiting for $what; last lines of its log:"
        tail -n 30 "$LOGS/$c.log" >&2 || true
        return 1
      fi
    done
    if ((SECONDS >= deadline)); then
      log "timed out after ${READY_TIMEOUT}s waiting for $what"
      return 1
    fi
    sleep 0.25
  done
}

etcd_healthy() { curl -sf --max-time 2 "http://$LOOPBACK:$ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() { [[ $(admin_curl /readyz) == ok ]]; }
controller_manager_healthy() {
  [[ $(curl -sS --max-time 2 --cacert "$PKI/ca.crt" "https://$LOOPBACK:$KCM_PORT/healthz") == ok ]]
}
# The serviceaccount controller creating `default` in `default` proves the
# controller manager talks to the apiserver with its per-controller credentials.
default_sa_exists() { admin_curl /api/v1/namespaces/default/serviceaccounts/default | grep -q '"name": "default"'; }

load_state() {
  [[ -f $STATE ]] || return 1
  # shellcheck disable=SC1090
  source "$STATE"
  if [[ ${NODE_RUNNING:-0} == 1 ]]; then
    COMPONENTS=("${ALL_COMPONENTS[@]}")
  else
    COMPONENTS=("${CONTROL_PLANE_COMPONENTS[@]}")
  fi
}

is_running() {
  load_state || return 1
  local c
  for c in "${COMPONENTS[@]}"; do live_pid "$c" >/dev/null || return 1; done
  apiserver_ready
}

start_cluster() {
  local t0
  t0=$(now)
  # Leftovers of a crashed run: stop whatever of ours still runs, then start clean.
  stop_all
  no_mounts_under "$CLUSTER_DIR" || die "cannot wipe $CLUSTER_DIR: something is still mounted below it"
  find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name .lock ! -name "$MARKER" -exec rm -rf {} +
  mkdir -p "$PIDS" "$LOGS" "$CLUSTER_DIR/etcd" "$CLUSTER_DIR/flexvolume"
  chmod 700 "$CLUSTER_DIR" "$CLUSTER_DIR/etcd"

  ETCD_PORT=$(free_port)
  ETCD_PEER_PORT=$(free_port)
  APISERVER_PORT=$(free_port)
  KCM_PORT=$(free_port)
  # The apiserver advertises loopback and keeps no `kubernetes` Endpoints, unless
  # there is a node whose pods must reach it (see the comment at its start).
  local advertise=("--advertise-address=$LOOPBACK" --endpoint-reconciler-type=none)
  local kubelet_client=()
  if ((NODE)); then
    mkdir -p "$NODE_RUN"
    echo "$CLUSTER_DIR" >"$NODE_RUN/owner"
    node_save_host_state
    node_network_up
    SCHED_PORT=$(free_port)
    KUBELET_PORT=$(free_port)
    KUBELET_HEALTHZ_PORT=$(free_port)
    KPROXY_HEALTHZ_PORT=$(free_port)
    KPROXY_METRICS_PORT=$(free_port)
    CONTAINERD_STREAM_PORT=$(free_port)
    PAUSE_IMAGE=kseal.local/pause:$(<"$BIN_DIR/pause.tag")
    APISERVER_EXTRA_SANS=",IP:$BRIDGE_IP"
    advertise=(--advertise-address="$BRIDGE_IP" --endpoint-reconciler-type=lease)
    kubelet_client=(--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt"
      --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
      --kubelet-certificate-authority="$PKI/ca.crt"
      --kubelet-preferred-address-types=InternalIP)
  fi
  make_pki
  if ((NODE)); then (umask 077 && node_pki); fi
  write_kubeconfig "$ADMIN_KUBECONFIG" admin kseal-e2e-admin
  write_kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" controller-manager \
    system:kube-controller-manager
  cat >"$STATE" <<EOF
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
APISERVER_PORT=$APISERVER_PORT
KCM_PORT=$KCM_PORT
KUBECONFIG=$ADMIN_KUBECONFIG
APISERVER_URL=https://$LOOPBACK:$APISERVER_PORT
EOF
  if ((NODE)); then
    cat >>"$STATE" <<EOF
NODE_RUNNING=1
NODE_NAME=$NODE_NAME
BRIDGE=$BRIDGE
BRIDGE_IP=$BRIDGE_IP
POD_CIDR=$POD_CIDR
SCHED_PORT=$SCHED_PORT
KUBELET_PORT=$KUBELET_PORT
KUBELET_HEALTHZ_PORT=$KUBELET_HEALTHZ_PORT
KPROXY_HEALTHZ_PORT=$KPROXY_HEALTHZ_PORT
KPROXY_METRICS_PORT=$KPROXY_METRICS_PORT
CONTAINERD_STREAM_PORT=$CONTAINERD_STREAM_PORT
CONTAINERD_SOCK=$CONTAINERD_SOCK
PAUSE_IMAGE=$PAUSE_IMAGE
EOF
  fi

  # etcd: plain HTTP, but only on loopback (peer URL too; it is a one-member cluster).
  spawn etcd /usr/bin/etcd --name kseal-e2e --data-dir "$CLUSTER_DIR/etcd" \
    --listen-client-urls "http://$LOOPBACK:$ETCD_PORT" \
    --advertise-client-urls "http://$LOOPBACK:$ETCD_PORT" \
    --listen-peer-urls "http://$LOOPBACK:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://$LOOPBACK:$ETCD_PEER_PORT" \
    --initial-cluster "kseal-e2e=http://$LOOPBACK:$ETCD_PEER_PORT" \
    --initial-cluster-state new --initial-cluster-token "kseal-e2e-$$" \
    --snapshot-count 10000 --logger zap --log-level warn
  wait_for etcd etcd_healthy || die "etcd did not become healthy"

  # --advertise-address is not listened on; it is only what the `kubernetes`
  # Endpoints say. Endpoints may not be loopback. Without a node there is no
  # network for pods to reach the apiserver anyway, so the endpoint reconciler is
  # off and the apiserver advertises loopback. With --node it advertises the
  # bridge address, where apiserver-relay (below) makes it reachable: the
  # apiserver binds one address only, and that stays 127.0.0.1.
  spawn kube-apiserver "$BIN_DIR/kube-apiserver" \
    --bind-address=$LOOPBACK --secure-port="$APISERVER_PORT" --insecure-port=0 \
    "${advertise[@]}" ${kubelet_client[@]+"${kubelet_client[@]}"} \
    --etcd-servers="http://$LOOPBACK:$ETCD_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-cluster-ip-range=$SERVICE_CIDR \
    --service-account-issuer=$SA_ISSUER \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-key-file="$PKI/sa.pub" \
    --api-audiences=$SA_ISSUER \
    --enable-admission-plugins=NodeRestriction \
    --profiling=false --v=1 ${KSEAL_APISERVER_FLAGS:-}
  wait_for "kube-apiserver /readyz" apiserver_ready || die "kube-apiserver did not become ready"
  local t_api
  t_api=$(elapsed "$t0")
  if ((NODE)); then
    # $BRIDGE_IP:$APISERVER_PORT -> 127.0.0.1:$APISERVER_PORT, TLS passes through.
    node_cgroup_create system
    spawn_node apiserver-relay socat -L "$CLUSTER_DIR/apiserver-relay.lock" \
      "TCP-LISTEN:$APISERVER_PORT,bind=$BRIDGE_IP,reuseaddr,fork,backlog=128" "TCP:$LOOPBACK:$APISERVER_PORT"
  fi

  spawn kube-controller-manager "$BIN_DIR/kube-controller-manager" \
    --bind-address=$LOOPBACK --secure-port="$KCM_PORT" --port=0 \
    --tls-cert-file="$PKI/controller-manager-serving.crt" \
    --tls-private-key-file="$PKI/controller-manager-serving.key" \
    --kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$CLUSTER_DIR/controller-manager.kubeconfig" \
    --authentication-skip-lookup=true \
    --flex-volume-plugin-dir="$CLUSTER_DIR/flexvolume" \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" \
    --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range=$SERVICE_CIDR \
    --leader-elect=false --controllers='*' \
    --profiling=false --v=1
  wait_for "kube-controller-manager /healthz" controller_manager_healthy ||
    die "kube-controller-manager did not become healthy"
  wait_for "the default ServiceAccount" default_sa_exists ||
    die "the controller manager's serviceaccount controller did not run"

  if ((NODE)); then
    COMPONENTS=("${ALL_COMPONENTS[@]}")
    start_node
  fi

  check_listen || die "a component listens on a non-loopback address"
  echo "START_TO_READY_SECONDS=$(elapsed "$t0")" >>"$STATE"
  log "control plane ready in $(elapsed "$t0")s (apiserver /readyz after ${t_api}s);" \
    "apiserver https://$LOOPBACK:$APISERVER_PORT"
}

# Every listening TCP/UDP socket of our processes must be on 127.0.0.0/8 or ::1;
# with a node, also exactly on the bridge address (kubelet, apiserver-relay).
check_listen() {
  local node_ip=none
  [[ ${NODE_RUNNING:-0} == 1 || ${NODE:-0} == 1 ]] && node_ip=$BRIDGE_IP
  local c pid bad=0 line
  for c in "${COMPONENTS[@]}"; do
    pid=$(live_pid "$c") || { log "$c is not running"; return 1; }
    while read -r line; do
      [[ -z $line ]] && continue
      local addr
      addr=$(awk '{print $5}' <<<"$line") # Netid State Recv-Q Send-Q Local Peer Process
      case $addr in
        127.*:* | '[::1]:'* | '[::ffff:127.'* | "$node_ip":* | "[::ffff:$node_ip]:"*) ;;
        *) log "$c (pid $pid) listens on $addr"; bad=1 ;;
      esac
    done < <(ss -Hltunp 2>/dev/null | grep -F "pid=$pid," || true)
  done
  return "$bad"
}

# ---------------------------------------------------------------------------
# The node (`up --node`): kube-scheduler, containerd + runc, kubelet, kube-proxy
# ---------------------------------------------------------------------------
#
# One node per machine: kube-proxy's iptables chains, the bridge and the cgroup
# are machine-wide. /run/kseal-node/ records which cluster directory owns them
# (`owner`), the sysctls as they were before kubelet and kube-proxy changed them
# (`sysctl.saved`), and which system directories did not exist before (`created`).

# Every node-side process (and so every container) lives in this cgroup, in each
# hierarchy: `down` kills by the PIDs listed there, which also finds containers
# whose shim died, and removes the cgroups.
node_cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/mounts; }

node_cgroup_pids() {
  local m
  for m in $(node_cgroup_mounts); do
    [[ -d $m/$NODE_CGROUP ]] || continue
    find "$m/$NODE_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

# Create $NODE_CGROUP/$1 in every hierarchy (cpuset needs its cpus and mems set).
node_cgroup_create() {
  local m d sub=$1
  for m in $(node_cgroup_mounts); do
    for d in "$m/$NODE_CGROUP" "$m/$NODE_CGROUP/$sub"; do
      [[ -d $d ]] && continue
      mkdir "$d" || die "cannot create cgroup $d"
      if [[ -f $d/cpuset.cpus ]]; then
        cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
        cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
      fi
    done
  done
}

# Move PID $1 into $NODE_CGROUP/$2 in every hierarchy.
node_cgroup_join() {
  local m
  for m in $(node_cgroup_mounts); do
    [[ -d $m/$NODE_CGROUP/$2 ]] && echo "$1" >"$m/$NODE_CGROUP/$2/cgroup.procs" 2>/dev/null || true
  done
}

# The network namespaces the node's containers use: those of processes in our
# cgroup and those at the other end of a veth on our bridge, as /run/netns names.
node_netns_names() {
  local pid inodes=" " f ino id
  for pid in $(node_cgroup_pids); do
    ino=$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) && inodes+="$ino "
  done
  local ids=" "
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    for id in $(ip -o -d link show master "$BRIDGE" 2>/dev/null | sed -nE 's/.* link-netnsid ([0-9]+).*/\1/p'); do
      ids+="$id "
    done
  fi
  for f in /run/netns/*; do
    [[ -e $f ]] || continue
    ino=$(stat -L -c %i "$f" 2>/dev/null) || continue
    id=$(ip netns list 2>/dev/null | sed -nE "s#^${f##*/} \(id: ([0-9]+)\)#\1#p")
    if [[ $inodes == *" $ino "* || (-n $id && $ids == *" $id "*) ]]; then echo "${f##*/}"; fi
  done
}

# Remove every iptables / ip6tables chain named KUBE-* (kube-proxy, kubelet) or
# CNI-* (portmap, bridge masquerading) and the rules in the built-in chains that
# jump to them.
node_iptables_cleanup() {
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle; do
      "$ipt" -t "$table" -S >/dev/null 2>&1 || continue
      while read -r rule; do
        # shellcheck disable=SC2086
        eval "$ipt -w -t $table -D ${rule#-A }" 2>/dev/null || true
      done < <("$ipt" -t "$table" -S 2>/dev/null |
        grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j (KUBE|CNI)-' || true)
      local chains
      chains=$("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ { print $2 }')
      for chain in $chains; do "$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in $chains; do "$ipt" -w -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
  # The tables themselves, if they did not exist before the node and hold no rule now.
  [[ -f $NODE_RUN/nft-tables ]] && command -v nft >/dev/null || return 0
  local family name
  while read -r _ family name; do
    grep -qxF "table $family $name" "$NODE_RUN/nft-tables" && continue
    [[ $family == ip ]] && ipt=iptables || ipt=ip6tables
    "$ipt" -t "$name" -S 2>/dev/null | grep -q '^-A' && continue
    nft delete table "$family" "$name" 2>/dev/null || true
  done < <(nft list tables 2>/dev/null | grep -E '^table (ip|ip6) (filter|nat|mangle|raw|security)$' || true)
}

readonly NODE_SYSCTLS=(kernel/panic kernel/panic_on_oops vm/overcommit_memory vm/panic_on_oom
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/conf/all/route_localnet
  net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables
  net/netfilter/nf_conntrack_max net/netfilter/nf_conntrack_tcp_timeout_established
  net/netfilter/nf_conntrack_tcp_timeout_close_wait)
# System directories kubelet, containerd and CNI create at fixed places, whatever
# --root-dir and containerd's root say: kubelet v1.20 writes Pod logs to
# /var/log/pods (linked from /var/log/containers) and its device-plugin socket
# to /var/lib/kubelet/device-plugins; libcni caches results in /var/lib/cni;
# shims put their sockets in /run/containerd/s. `down` removes those it created.
readonly NODE_SYSTEM_DIRS=(/var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /run/containerd)

node_save_host_state() {
  mkdir -p "$NODE_RUN"
  local s
  if [[ ! -f $NODE_RUN/sysctl.saved ]]; then
    for s in "${NODE_SYSCTLS[@]}"; do
      [[ -r /proc/sys/$s ]] && printf '%s %s\n' "$s" "$(</proc/sys/"$s")"
    done >"$NODE_RUN/sysctl.saved.tmp"
    mv "$NODE_RUN/sysctl.saved.tmp" "$NODE_RUN/sysctl.saved"
  fi
  if [[ ! -f $NODE_RUN/created ]]; then
    for s in "${NODE_SYSTEM_DIRS[@]}"; do [[ -e $s ]] || echo "$s"; done >"$NODE_RUN/created"
  fi
  # iptables-nft creates its nf_tables tables on first use and never deletes them.
  if [[ ! -f $NODE_RUN/nft-tables ]] && command -v nft >/dev/null; then
    nft list tables >"$NODE_RUN/nft-tables" 2>/dev/null || true
  fi
}

node_restore_host_state() {
  local s v cur
  if [[ -f $NODE_RUN/sysctl.saved ]]; then
    while read -r s v; do
      cur=$(cat "/proc/sys/$s" 2>/dev/null) || continue
      [[ $cur == "$v" ]] && continue
      log "restoring sysctl ${s//\//.} = $v (was changed to $cur)"
      echo "$v" >"/proc/sys/$s" 2>/dev/null || log "warning: cannot restore ${s//\//.}"
    done <"$NODE_RUN/sysctl.saved"
  fi
  # Pod logs of our Pods (directories named <ns>_<pod>_<uid>), the links to them,
  # and the CNI result cache of our network.
  local d
  for d in /var/log/pods/*; do
    [[ -d $d && -d $NODE_DIR/kubelet/pods/${d##*_} ]] && rm -rf "$d"
  done
  for d in /var/log/containers/*; do
    [[ -L $d && ! -e $d && $(readlink "$d") == /var/log/pods/* ]] && rm -f "$d"
  done
  rm -f /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null || true
  rm -f /var/lib/cni/results/cni-loopback-* 2>/dev/null || true
  # Shim sockets nobody listens on any more.
  local listening
  listening=$(ss -Hxl 2>/dev/null | awk '{ print $5 }')
  for d in /run/containerd/s/*; do
    [[ -S $d ]] && ! grep -qxF "$d" <<<"$listening" && rm -f "$d"
  done
  if [[ -f $NODE_RUN/created ]]; then
    while read -r d; do
      [[ -n $d && -d $d ]] || continue
      if no_mounts_under "$d"; then rm -rf "$d"; else log "warning: $d has mounts; left in place"; fi
    done <"$NODE_RUN/created"
  fi
  rm -rf "$NODE_RUN"
}

# Tear down everything the node left on the machine, if this cluster directory
# owns it (or nobody alive does). After stop_all, so no kubelet recreates things.
node_cleanup() {
  local owner=""
  [[ -f $NODE_RUN/owner ]] && owner=$(<"$NODE_RUN/owner")
  if [[ -n $owner && $owner != "$CLUSTER_DIR" ]]; then
    # Not while that cluster's `up --node` is starting its node (it holds the lock).
    if ((!NODE)); then
      exec 6>"$NODE_RUN.lock"
      flock 6
    fi
    if node_owner_alive "$owner"; then
      [[ -d $NODE_DIR ]] && unmount_under "$CLUSTER_DIR"
      return 0
    fi
    log "cleaning up the node left behind by $owner"
  fi
  if [[ -z $owner && ! -d $NODE_DIR ]] && ! ip link show "$BRIDGE" >/dev/null 2>&1 &&
    [[ -z $(node_cgroup_mounts | while read -r m; do [[ -d $m/$NODE_CGROUP ]] && echo x; done) ]]; then
    return 0 # no node here
  fi
  local netns pids n
  netns=$(node_netns_names)
  # Containers and shims (whose parents are gone): kill by the PIDs in our cgroup.
  for n in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(node_cgroup_pids)
    [[ -z $pids ]] && break
    ((n == 1)) && log "killing the node's remaining processes: $(tr '\n' ' ' <<<"$pids")"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.3
  done
  [[ -z $(node_cgroup_pids) ]] || log "warning: processes left in cgroup $NODE_CGROUP: $(node_cgroup_pids | tr '\n' ' ')"
  for n in $netns; do
    log "deleting network namespace $n"
    ip netns delete "$n" 2>/dev/null || log "warning: cannot delete netns $n"
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    local veth
    for veth in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
      ip link delete "$veth" 2>/dev/null || true
    done
    log "deleting bridge $BRIDGE"
    ip link delete "$BRIDGE" type bridge 2>/dev/null || log "warning: cannot delete $BRIDGE"
  fi
  node_iptables_cleanup
  unmount_under "$CLUSTER_DIR"
  [[ -n $owner && $owner != "$CLUSTER_DIR" ]] && unmount_under "$owner"
  local m
  for m in $(node_cgroup_mounts); do
    [[ -d $m/$NODE_CGROUP ]] && find "$m/$NODE_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null
    [[ -d $m/$NODE_CGROUP ]] && log "warning: cannot remove cgroup $m/$NODE_CGROUP"
  done
  node_restore_host_state
  return 0
}

# Whether cluster directory $1 runs a kubelet (that is not us).
node_owner_alive() {
  local dir=$1 pid
  [[ -f $dir/pids/kubelet.pid ]] || return 1
  pid=$(<"$dir/pids/kubelet.pid")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/"
}

# Unmount everything mounted at or below $1, deepest first (overlay rootfs and
# shm of containers, kubelet's tmpfs volumes and its rshared bind mount).
unmount_under() {
  local dir=${1%/} m
  [[ -n $dir && $dir != / ]] || return 0
  local mounts
  mounts=$(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
  for m in $mounts; do
    m=$(printf '%b' "$m") # /proc/mounts escapes spaces as \040
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
  done
}

# Whether nothing is mounted at or below $1 (so rm -rf stays inside it).
no_mounts_under() {
  local dir=${1%/} m
  m=$(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts)
  [[ -z $m ]] && return 0
  log "still mounted below $dir: $(tr '\n' ' ' <<<"$m")"
  return 1
}

# The pod subnet must not be on this machine yet (a route or an address).
node_check_subnet() {
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    die "$BRIDGE exists but is not ours (or cleaning it up failed): see 'ip -d link show $BRIDGE'"
  fi
  local r
  r=$(ip -4 route show 2>/dev/null | awk -v p="${POD_PREFIX}." 'index($1, p) == 1 || $1 ~ /^0\.0\.0\.0/ { next } { print }' | grep -F "$POD_PREFIX." || true)
  [[ -z $r ]] || die "the pod subnet $POD_CIDR is already routed here ($r); set KSEAL_POD_SUBNET"
}

node_network_up() {
  node_check_subnet
  log "creating bridge $BRIDGE with $BRIDGE_IP/24 (pods: $POD_CIDR)"
  ip link add "$BRIDGE" type bridge
  ip link set "$BRIDGE" alias "$CLUSTER_DIR"
  ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pods get only two routes: their /24 and the Service range, both via the
  # bridge. No default route, no IP forwarding, no masquerading: they can reach
  # this host's bridge address (the apiserver, through kube-proxy's DNAT) and
  # each other, nothing beyond.
  mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  cat >"$NODE_DIR/cni/net.d/10-kseal.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "rangeStart": "$POD_PREFIX.10", "gateway": "$BRIDGE_IP" }]],
        "routes": [{ "dst": "$SERVICE_CIDR", "gw": "$BRIDGE_IP" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

# overlayfs when the kernel and the cluster directory's filesystem can do it, else native.
pick_snapshotter() {
  local t=$NODE_DIR/overlay-probe
  mkdir -p "$t"/{l,u,w,m}
  if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
    umount "$t/m"
    rm -rf "$t"
    echo overlayfs
  else
    rm -rf "$t"
    log "overlayfs does not mount in $NODE_DIR; containerd uses the native snapshotter"
    echo native
  fi
}

write_containerd_config() {
  local d=$NODE_DIR/containerd
  mkdir -p "$d/root" "$d/state" "$d/opt" "$NODE_DIR/runc"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "$LOOPBACK"
  stream_server_port = "$CONTAINERD_STREAM_PORT"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$SNAPSHOTTER"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$NODE_DIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
EOF
}

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# Pack the static binary $1 as the entrypoint (with args "${@:3}") of an OCI image
# tagged $2 into an OCI layout archive; print the archive's path. The index entry
# carries containerd's image-name annotation, so `ctr images import` names it $2.
make_oci_image() {
  local bin=$1 ref=$2
  shift 2
  local name=${ref##*/}
  name=${name%%:*}
  local tag=${ref##*:} w
  w=$(mktemp -d "${TMPDIR:-/tmp}/kseal-oci.XXXXXX")
  umoci init --layout "$w/oci" >&2
  umoci new --image "$w/oci:$tag" >&2
  umoci unpack --image "$w/oci:$tag" "$w/bundle" >&2
  cp "$bin" "$w/bundle/rootfs/${bin##*/}"
  umoci repack --image "$w/oci:$tag" "$w/bundle" >&2
  local cfg=(--config.entrypoint "/${bin##*/}" --architecture amd64 --os linux)
  local a
  for a in "$@"; do cfg+=(--config.cmd "$a"); done
  umoci config --image "$w/oci:$tag" "${cfg[@]}" >&2
  umoci gc --layout "$w/oci" >&2
  jq --arg ref "$ref" '.manifests |= map(.annotations["io.containerd.image.name"] = $ref)' \
    "$w/oci/index.json" >"$w/index.json" && mv "$w/index.json" "$w/oci/index.json"
  local out=$w/$name.tar
  tar -C "$w/oci" -cf "$out" .
  rm -rf "$w/oci" "$w/bundle"
  echo "$out"
}

# Import the OCI (or docker-save) archive $1 into the node's containerd and print
# the image references it brought (one a line). An OCI archive whose index names
# images by tag only (umoci's ref.name) is imported as ${2:-kseal.local/<file>}:<tag>.
import_image() {
  local archive=$1 base=${2:-}
  [[ -f $archive ]] || die "no such image archive: $archive"
  local args=(--no-unpack=false --snapshotter "$SNAPSHOTTER")
  if tar -tf "$archive" 2>/dev/null | grep -qxE '(\./)?index\.json'; then
    local names
    names=$(tar -xOf "$archive" ./index.json 2>/dev/null || tar -xOf "$archive" index.json)
    if ! jq -e '[.manifests[].annotations // {} | (.["io.containerd.image.name"] // .["org.opencontainers.image.ref.name"] // "") | select(test("[/:]"))] | length > 0' >/dev/null <<<"$names"; then
      [[ -n $base ]] || { base=${archive##*/}; base=kseal.local/${base%%.*}; }
      args+=(--base-name "$base")
    fi
  fi
  local out
  out=$(ctr_k8s images import "${args[@]}" "$archive" 2>&1) || die "ctr images import $archive failed: $out"
  printf '%s\n' "$out" >&2
  local refs
  refs=$(sed -nE 's/^unpacking (.+) \(sha256:[0-9a-f]+\)\.\.\.done$/\1/p' <<<"$out")
  [[ -n $refs ]] || die "ctr imported no image from $archive"
  echo "$refs"
}

ensure_pause_image() {
  ctr_k8s images check "name==$PAUSE_IMAGE" 2>/dev/null | grep -q complete && return 0
  local archive
  archive=$(make_oci_image "$BIN_DIR/pause" "$PAUSE_IMAGE")
  import_image "$archive" >/dev/null
  rm -rf "$(dirname "$archive")"
  # Never pulled, never garbage-collected by kubelet while it is the sandbox image.
  ctr_k8s images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null 2>&1 || true
}

containerd_ready() { ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }
scheduler_healthy() {
  [[ $(curl -sS --max-time 2 --cacert "$PKI/ca.crt" "https://$LOOPBACK:$SCHED_PORT/healthz") == ok ]]
}
kubelet_healthy() { [[ $(curl -sS --max-time 2 "http://$LOOPBACK:$KUBELET_HEALTHZ_PORT/healthz") == ok ]]; }
kube_proxy_healthy() { curl -sf --max-time 2 "http://$LOOPBACK:$KPROXY_HEALTHZ_PORT/healthz" >/dev/null; }
node_ready() {
  admin_curl "/api/v1/nodes/$NODE_NAME" |
    jq -e '.status.conditions[] | select(.type == "Ready") | .status == "True"' >/dev/null
}
# The `kubernetes` Service's Endpoints name the bridge address (what pods reach).
kubernetes_endpoints_ready() {
  admin_curl /api/v1/namespaces/default/endpoints/kubernetes |
    jq -e --arg ip "$BRIDGE_IP" '.subsets[0].addresses[0].ip == $ip' >/dev/null
}

node_pki() {
  issue_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  issue_cert kubelet-serving "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$BRIDGE_IP"
  issue_cert kube-proxy "/CN=system:kube-proxy" clientAuth
  issue_cert kube-scheduler "/CN=system:kube-scheduler" clientAuth
  issue_cert scheduler-serving "/CN=kube-scheduler" serverAuth "DNS:localhost,IP:$LOOPBACK"
  # The apiserver's identity towards the kubelet (logs, exec, port-forward).
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
}

# Start the node's components on a running control plane.
start_node() {
  local t0
  t0=$(now)
  write_kubeconfig "$CLUSTER_DIR/kubelet.kubeconfig" kubelet "system:node:$NODE_NAME"
  write_kubeconfig "$CLUSTER_DIR/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
  write_kubeconfig "$CLUSTER_DIR/kube-scheduler.kubeconfig" kube-scheduler system:kube-scheduler

  spawn_node kube-scheduler "$BIN_DIR/kube-scheduler" \
    --bind-address=$LOOPBACK --secure-port="$SCHED_PORT" --port=0 \
    --tls-cert-file="$PKI/scheduler-serving.crt" --tls-private-key-file="$PKI/scheduler-serving.key" \
    --kubeconfig="$CLUSTER_DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$CLUSTER_DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$CLUSTER_DIR/kube-scheduler.kubeconfig" \
    --authentication-skip-lookup=true \
    --leader-elect=false --profiling=false --v=1

  SNAPSHOTTER=$(pick_snapshotter)
  echo "SNAPSHOTTER=$SNAPSHOTTER" >>"$STATE"
  write_containerd_config
  # Registries are reached only through a proxy on a closed loopback port: a Pod
  # whose image was not imported fails at once (ErrImagePull), and containerd never
  # resolves or dials a registry host (containerd 1.6 has no catch-all hosts.toml).
  spawn_node containerd env HTTP_PROXY="http://$LOOPBACK:9" HTTPS_PROXY="http://$LOOPBACK:9" \
    NO_PROXY= http_proxy= https_proxy= no_proxy= \
    containerd --config "$NODE_DIR/containerd/config.toml"
  wait_for containerd containerd_ready || die "containerd did not start"
  ensure_pause_image

  mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/volume-plugins"
  cat >"$NODE_DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $BRIDGE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $LOOPBACK
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
# Only holders of a certificate from the cluster's CA get in (the apiserver's
# kubelet client is system:masters); no SubjectAccessReview round trip.
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
cgroupsPerQOS: true
failSwapOn: false
protectKernelDefaults: false
makeIPTablesUtilChains: true
hairpinMode: none
clusterDomain: cluster.local
resolvConf: ""
volumePluginDir: $NODE_DIR/volume-plugins
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%"}
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
fileCheckFrequency: 10s
EOF
  spawn_node kubelet "$BIN_DIR/kubelet" \
    --config="$NODE_DIR/kubelet-config.yaml" \
    --kubeconfig="$CLUSTER_DIR/kubelet.kubeconfig" \
    --root-dir="$NODE_DIR/kubelet" --cert-dir="$NODE_DIR/kubelet/pki" \
    --container-runtime=remote --container-runtime-endpoint="unix://$CONTAINERD_SOCK" \
    --image-service-endpoint="unix://$CONTAINERD_SOCK" \
    --hostname-override=$NODE_NAME --node-ip="$BRIDGE_IP" --register-node=true \
    --containerd="$CONTAINERD_SOCK" --cloud-provider= --pod-infra-container-image="$PAUSE_IMAGE" --v=1
  wait_for "kubelet /healthz" kubelet_healthy || die "kubelet did not become healthy"

  spawn_node kube-proxy "$BIN_DIR/kube-proxy" \
    --kubeconfig="$CLUSTER_DIR/kube-proxy.kubeconfig" \
    --hostname-override=$NODE_NAME --bind-address="$BRIDGE_IP" \
    --proxy-mode=iptables --cluster-cidr="$POD_CIDR" --nodeport-addresses="$BRIDGE_IP/32" \
    --healthz-bind-address="$LOOPBACK:$KPROXY_HEALTHZ_PORT" \
    --metrics-bind-address="$LOOPBACK:$KPROXY_METRICS_PORT" \
    --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 \
    --conntrack-tcp-timeout-close-wait=0 --oom-score-adj=0 --v=1
  wait_for "kube-scheduler /healthz" scheduler_healthy || die "kube-scheduler did not become healthy"
  wait_for "node $NODE_NAME Ready" node_ready || die "node $NODE_NAME did not become Ready"
  wait_for "kube-proxy /healthz" kube_proxy_healthy || die "kube-proxy did not become healthy"
  wait_for "the kubernetes Endpoints at $BRIDGE_IP" kubernetes_endpoints_ready ||
    die "the kubernetes Service has no endpoint on $BRIDGE_IP"
  echo "NODE_START_TO_READY_SECONDS=$(elapsed "$t0")" >>"$STATE"
  log "node $NODE_NAME Ready after $(elapsed "$t0")s"
}

# spawn, in our cgroup (see node_cgroup_pids).
spawn_node() {
  spawn "$@"
  : >"$PIDS/$1.node"
  node_cgroup_join "$(<"$PIDS/$1.pid")" system
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

take_lock() {
  mkdir -p "$CLUSTER_DIR"
  # `up` wipes this directory: never adopt one with content that is not ours.
  if [[ ! -e $CLUSTER_DIR/$MARKER ]]; then
    local stranger
    stranger=$(find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name .lock ! -name logs \
      ! -name pids ! -name pki ! -name etcd ! -name flexvolume ! -name state.env \
      ! -name '*.kubeconfig' ! -name node ! -name apiserver-relay.lock -print -quit)
    [[ -z $stranger ]] ||
      die "$CLUSTER_DIR has content not made by cluster.sh ($stranger); refusing to use it"
  fi
  : >"$CLUSTER_DIR/$MARKER"
  exec 9>"$CLUSTER_DIR/.lock"
  flock 9
}

cmd_up() {
  take_lock
  local running=0
  is_running && running=1
  if ((running && NODE)) && [[ ${NODE_RUNNING:-0} != 1 ]]; then
    log "running without a node; restarting with --node"
    running=0
  fi
  if ((running)); then
    log "already running${NODE_RUNNING:+ (with node $NODE_NAME)}"
  else
    cmd_build
    # What `up` itself runs (already there after a build on this machine, but the
    # cache may have come without them).
    apt_install etcd-server openssl curl iproute2
    if ((NODE)); then
      apt_install containerd runc containernetworking-plugins umoci iptables conntrack socat jq \
        gcc libc6-dev
      node_claim
    fi
    # A failed start must not leave half a control plane running.
    trap 'stop_all' EXIT
    start_cluster
    trap - EXIT
  fi
  echo "$ADMIN_KUBECONFIG"
}

# One node per machine: refuse when another cluster directory's node is alive;
# clean up after a dead one. Holds $NODE_RUN.lock (fd 7) until we exit.
node_claim() {
  mkdir -p "$(dirname "$NODE_RUN")"
  exec 7>"$NODE_RUN.lock"
  flock 7
  local owner=""
  [[ -f $NODE_RUN/owner ]] && owner=$(<"$NODE_RUN/owner")
  if [[ -z $owner ]] && ip link show "$BRIDGE" >/dev/null 2>&1; then
    owner=$(ip -o link show "$BRIDGE" | sed -nE 's/.* alias (.*)$/\1/p')
  fi
  if [[ -n $owner && $owner != "$CLUSTER_DIR" ]] && node_owner_alive "$owner"; then
    die "the cluster in $owner runs a node already (one per machine: bridge $BRIDGE," \
      "kube-proxy's iptables chains); stop it with KSEAL_CLUSTER_DIR=$owner $0 down"
  fi
}

# Import an OCI image archive into the node's containerd; print its reference last.
cmd_image() {
  ((${#ARGS[@]} <= 2)) || die "usage: cluster.sh image [ARCHIVE [NAME]]"
  load_state || die "no cluster state in $CLUSTER_DIR"
  [[ ${NODE_RUNNING:-0} == 1 ]] && live_pid containerd >/dev/null ||
    die "no node runs in $CLUSTER_DIR (start it with: cluster.sh up --node)"
  if ((${#ARGS[@]} == 0)); then
    # No archive: the controller image from the working tree (release build, build.sh).
    local archive=$CLUSTER_DIR/kseal-controller.oci.tar
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    bash "$here/../../controller/image/build.sh" -o "$archive" >&2 ||
      die "controller/image/build.sh failed"
    ARGS=("$archive")
  fi
  import_image "${ARGS[@]}"
}

# Build (gcc -static + umoci) and import the probe image: a static program that
# connects to the apiserver through the `kubernetes` Service (node/probe.c).
cmd_probe_image() {
  load_state || die "no cluster state in $CLUSTER_DIR"
  [[ ${NODE_RUNNING:-0} == 1 ]] && live_pid containerd >/dev/null ||
    die "no node runs in $CLUSTER_DIR (start it with: cluster.sh up --node)"
  local here w archive
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  w=$(mktemp -d "${TMPDIR:-/tmp}/kseal-probe.XXXXXX")
  gcc -Os -Wall -Werror -static -o "$w/kseal-probe" "$here/node/probe.c" || die "compiling probe.c failed"
  strip "$w/kseal-probe"
  archive=$(make_oci_image "$w/kseal-probe" "$PROBE_IMAGE")
  import_image "$archive"
  rm -rf "$w" "$(dirname "$archive")"
}

cmd_down() {
  [[ -d $CLUSTER_DIR ]] || return 0
  take_lock
  stop_all
  # Keep the logs for post-mortems; the rest is rebuilt by the next `up`.
  rm -rf "$CLUSTER_DIR/etcd" "$PKI" "$STATE" "$CLUSTER_DIR"/*.kubeconfig "$CLUSTER_DIR/apiserver-relay.lock"
  if [[ -d $NODE_DIR ]]; then
    no_mounts_under "$NODE_DIR" || die "not removing $NODE_DIR: something is still mounted below it"
    rm -rf "$NODE_DIR"
  fi
  log "stopped"
}

# The health check of component $1 (`restart` waits for it).
component_healthy() {
  case $1 in
    etcd) etcd_healthy ;;
    kube-apiserver) apiserver_ready ;;
    kube-controller-manager) controller_manager_healthy ;;
    kube-scheduler) scheduler_healthy ;;
    containerd) containerd_ready ;;
    kubelet) kubelet_healthy ;;
    kube-proxy) kube_proxy_healthy ;;
    *) true ;;
  esac
}

cmd_restart() {
  ((${#ARGS[@]} == 1)) || die "usage: cluster.sh restart COMPONENT [--down-for SECONDS]"
  local c=${ARGS[0]} pid t0
  [[ $DOWN_FOR =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--down-for takes seconds, e.g. 5 or 0.5"
  load_state || die "no cluster state in $CLUSTER_DIR"
  [[ " ${COMPONENTS[*]} " == *" $c "* ]] ||
    die "no component $c in this cluster (it runs: ${COMPONENTS[*]})"
  [[ -f $PIDS/$c.cmd ]] || die "no recorded command for $c (started by an older cluster.sh?)"
  t0=$(now)
  if pid=$(live_pid "$c"); then
    log "killing $c (pid $pid) with SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  else
    log "$c is not running; starting it"
  fi
  if [[ $DOWN_FOR != 0 ]]; then sleep "$DOWN_FOR"; fi
  respawn "$c"
  wait_healthy "$c" || die "$c did not become healthy after its restart"
  local down
  down=$(elapsed "$t0")
  # Some components exit when the apiserver is unreachable for a while (the controller
  # manager does); a kubelet would start their static Pods again, so do the same.
  local other
  for other in "${COMPONENTS[@]}"; do
    [[ $other == "$c" ]] && continue
    if exited "$other"; then
      log "$other exited while $c was down; starting it again (as a kubelet restarts a static Pod)"
      respawn "$other"
      wait_healthy "$other" || die "$other did not become healthy again"
    fi
  done
  log "$c restarted; down for ${down}s"
  echo "$down"
}

# Start component $1 again with its recorded command.
respawn() {
  local cmd=()
  mapfile -d '' cmd <"$PIDS/$1.cmd"
  spawn "$1" "${cmd[@]}"
  if [[ -f $PIDS/$1.node ]]; then
    : >"$PIDS/$1.node"
    node_cgroup_join "$(<"$PIDS/$1.pid")" system
  fi
}

# Wait until component $1 is healthy (not failing fast on other components, which may be
# down on purpose), or it exits.
wait_healthy() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until component_healthy "$1" >/dev/null 2>&1; do
    if exited "$1"; then
      log "$1 exited after its restart; last lines of its log:"
      tail -n 30 "$LOGS/$1.log" >&2 || true
      return 1
    fi
    ((SECONDS < deadline)) || { log "timed out waiting for $1"; return 1; }
    sleep 0.25
  done
}

# Compact etcd to its current revision (etcd's HTTP gateway; no etcdctl needed).
cmd_compact() {
  load_state || die "no cluster state in $CLUSTER_DIR"
  local rev
  rev=$(curl -sf --max-time 5 -X POST "http://$LOOPBACK:$ETCD_PORT/v3/kv/range" -d '{"key":"AA=="}' |
    sed -nE 's/.*"revision":"?([0-9]+)"?.*/\1/p')
  [[ -n $rev ]] || die "cannot read etcd's revision"
  curl -sf --max-time 30 -X POST "http://$LOOPBACK:$ETCD_PORT/v3/kv/compaction" \
    -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null || die "etcd compaction failed"
  log "etcd compacted to revision $rev"
  echo "$rev"
}

cmd_status() {
  if is_running; then
    echo "running: https://$LOOPBACK:$APISERVER_PORT kubeconfig=$ADMIN_KUBECONFIG${NODE_RUNNING:+ node=$NODE_NAME}"
  else
    echo "not running"
    exit 1
  fi
}

cmd_env() {
  if ! load_state; then die "no cluster state in $CLUSTER_DIR"; fi
  cat "$STATE"
  local c pid
  for c in "${COMPONENTS[@]}"; do
    pid=$(live_pid "$c" || true)
    printf 'PID_%s=%s\n' "$(tr 'a-z-' 'A-Z_' <<<"$c")" "$pid"
  done
  echo "CLUSTER_DIR=$CLUSTER_DIR"
  echo "BIN_DIR=$BIN_DIR"
}

cmd_check_listen() {
  if ! load_state; then die "no cluster state in $CLUSTER_DIR"; fi
  if ! check_listen; then die "a component listens on a non-loopback address"; fi
  if [[ ${NODE_RUNNING:-0} == 1 ]]; then
    echo "all listening sockets are on loopback or the bridge address $BRIDGE_IP"
  else
    echo "all listening sockets are on loopback"
  fi
}

command=${1:-}
(($#)) && shift
ARGS=()
DOWN_FOR=0
while (($#)); do
  case $1 in
    --node) NODE=1 ;;
    --down-for)
      (($# >= 2)) || { echo "--down-for needs a value" >&2; exit 2; }
      DOWN_FOR=$2
      shift
      ;;
    --down-for=*) DOWN_FOR=${1#--down-for=} ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done

case $command in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  check-listen) cmd_check_listen ;;
  image) cmd_image ;;
  probe-image) cmd_probe_image ;;
  restart) cmd_restart ;;
  compact) cmd_compact ;;
  *)
    sed -n '2,/^set -Eeuo/p' "$0" | sed -e '/^set -Eeuo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
