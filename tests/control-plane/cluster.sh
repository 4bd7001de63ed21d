#!/usr/bin/env bash
# A real, throw-away Kubernetes control plane (etcd + kube-apiserver +
# kube-controller-manager v1.20.2) for kseal's end-to-end tests.
#
# Usage: cluster.sh build|up|down|status|env|check-listen
#
#   build         install the Debian packages needed and build kube-apiserver and
#                 kube-controller-manager from Debian's `kubernetes` source
#                 package into the cache (no-op when the cache has them).
#   up            build if needed, start etcd + apiserver + controller-manager on
#                 127.0.0.1 with free ports, wait until ready, and print the admin
#                 kubeconfig's path as the LAST line of stdout. On a running
#                 cluster it only prints the path again. Safe to call concurrently.
#   down          stop exactly the processes `up` started (by PID) and remove the
#                 cluster's data. Safe to call when nothing runs.
#   status        exit 0 if the cluster runs and the apiserver is ready, 1 if not.
#   env           print the state (ports, PIDs, paths) as shell assignments.
#   check-listen  fail unless every socket our processes listen on is loopback.
#
# Progress and diagnostics go to stderr; stdout carries only results.
#
# Environment:
#   KSEAL_CLUSTER_DIR  state directory (certs, kubeconfigs, etcd data, logs, PIDs);
#                      default /tmp/kseal-cluster. One cluster per directory.
#   KSEAL_CACHE_DIR    where built binaries are cached, keyed by version;
#                      default /var/cache/kseal (or ~/.cache/kseal if unwritable).
#   KSEAL_READY_TIMEOUT  seconds `up` waits for readiness (default 120).
set -Eeuo pipefail
# set -e ends the script silently; say where.
trap 'printf "[cluster.sh] error: line %s: \"%s\" failed (exit %s)\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

readonly K8S_VERSION=1.20.2
readonly LOOPBACK=127.0.0.1
# The ClusterIP range of Services; no Service traffic is ever routed (there is no
# kubelet or kube-proxy), it only has to be a valid range.
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
READY_TIMEOUT=${KSEAL_READY_TIMEOUT:-120}

PKI=$CLUSTER_DIR/pki
PIDS=$CLUSTER_DIR/pids
LOGS=$CLUSTER_DIR/logs
STATE=$CLUSTER_DIR/state.env
ADMIN_KUBECONFIG=$CLUSTER_DIR/admin.kubeconfig
# Marks a directory as ours (see take_lock).
readonly MARKER=.kseal-cluster
# Components in start order; `down` stops them in reverse.
readonly COMPONENTS=(etcd kube-apiserver kube-controller-manager)

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
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || rc=$?
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

cmd_build() {
  have_binaries && return 0
  mkdir -p "$CACHE_ROOT"
  exec 8>"$CACHE_ROOT/k8s-v$K8S_VERSION.lock"
  log "waiting for the build lock $CACHE_ROOT/k8s-v$K8S_VERSION.lock"
  flock 8
  have_binaries && { exec 8>&-; return 0; } # someone else built it meanwhile

  local t0 t_src t_go
  t0=$(now)
  apt_install ca-certificates dpkg-dev golang-go make rsync etcd-server openssl curl iproute2 \
    golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
  ensure_deb_src

  local work=$CACHE_ROOT/build-v$K8S_VERSION
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
  local build_date t1 cmd
  build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  t1=$(now)
  mkdir -p "$work/home"
  log "make WHAT='cmd/kube-apiserver cmd/kube-controller-manager' (offline, vendored; takes minutes)"
  (cd "$src" && env -u GOROOT -u GOPATH -u GOBIN GO111MODULE=off GOFLAGS= GOPROXY=off \
    HOME="$work/home" make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2) ||
    die "make failed (see above)"
  local out=$src/_output/local/bin/linux/amd64
  for cmd in kube-apiserver kube-controller-manager; do
    [[ -x $out/$cmd ]] || die "make did not produce $out/$cmd"
  done
  t_go=$(elapsed "$t1")
  "$out/kube-apiserver" --version >&2

  rm -rf "$BIN_DIR"
  mkdir -p "$BIN_DIR"
  mv "$out/kube-apiserver" "$out/kube-controller-manager" "$BIN_DIR/"
  {
    echo "version=v$K8S_VERSION"
    echo "built=$build_date"
    echo "go=$(go version)"
    echo "source_seconds=$t_src"
    echo "make_seconds=$t_go"
    echo "total_seconds=$(elapsed "$t0")"
  } >"$STAMP.tmp"
  mv "$STAMP.tmp" "$STAMP"
  rm -rf "$work"
  log "built kube-apiserver and kube-controller-manager v$K8S_VERSION into $BIN_DIR" \
    "(fetch+unpack ${t_src}s, make ${t_go}s, total $(elapsed "$t0")s)"
  exec 8>&-
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
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[i]}
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
}

# PIDs of etcd / kube-apiserver / kube-controller-manager processes whose command
# line names our state directory.
orphan_pids() {
  local dir cmdline exe
  for dir in /proc/[0-9]*; do
    cmdline=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
    exe=${cmdline%% *}
    case ${exe##*/} in
      etcd | kube-apiserver | kube-controller-manager) ;;
      *) continue ;;
    esac
    if [[ $cmdline == *" --"*"$CLUSTER_DIR/"* ]]; then printf '%s ' "${dir#/proc/}"; fi
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
      "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:$LOOPBACK,IP:$SERVICE_IP"
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
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 8>&- 9>&- &
  echo $! >"$PIDS/$name.pid"
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
    for c in "${COMPONENTS[@]}"; do
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
  find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name .lock ! -name "$MARKER" -exec rm -rf {} +
  mkdir -p "$PIDS" "$LOGS" "$CLUSTER_DIR/etcd" "$CLUSTER_DIR/flexvolume"
  chmod 700 "$CLUSTER_DIR" "$CLUSTER_DIR/etcd"

  ETCD_PORT=$(free_port)
  ETCD_PEER_PORT=$(free_port)
  APISERVER_PORT=$(free_port)
  KCM_PORT=$(free_port)
  make_pki
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
  # Endpoints would say. Endpoints may not be loopback, and there is no network
  # here for pods to reach the apiserver anyway, so the endpoint reconciler is off
  # and the apiserver advertises loopback.
  spawn kube-apiserver "$BIN_DIR/kube-apiserver" \
    --bind-address=$LOOPBACK --secure-port="$APISERVER_PORT" --insecure-port=0 \
    --advertise-address=$LOOPBACK --endpoint-reconciler-type=none \
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
    --profiling=false --v=1
  wait_for "kube-apiserver /readyz" apiserver_ready || die "kube-apiserver did not become ready"
  local t_api
  t_api=$(elapsed "$t0")

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

  check_listen || die "a component listens on a non-loopback address"
  echo "START_TO_READY_SECONDS=$(elapsed "$t0")" >>"$STATE"
  log "control plane ready in $(elapsed "$t0")s (apiserver /readyz after ${t_api}s);" \
    "apiserver https://$LOOPBACK:$APISERVER_PORT"
}

# Every listening TCP/UDP socket of our processes must be on 127.0.0.0/8 or ::1.
check_listen() {
  local c pid bad=0 line
  for c in "${COMPONENTS[@]}"; do
    pid=$(live_pid "$c") || { log "$c is not running"; return 1; }
    while read -r line; do
      [[ -z $line ]] && continue
      local addr
      addr=$(awk '{print $5}' <<<"$line") # Netid State Recv-Q Send-Q Local Peer Process
      case $addr in
        127.*:* | '[::1]:'* | '[::ffff:127.'*) ;;
        *) log "$c (pid $pid) listens on $addr"; bad=1 ;;
      esac
    done < <(ss -Hltunp 2>/dev/null | grep -F "pid=$pid," || true)
  done
  return "$bad"
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
      ! -name '*.kubeconfig' -print -quit)
    [[ -z $stranger ]] ||
      die "$CLUSTER_DIR has content not made by cluster.sh ($stranger); refusing to use it"
  fi
  : >"$CLUSTER_DIR/$MARKER"
  exec 9>"$CLUSTER_DIR/.lock"
  flock 9
}

cmd_up() {
  take_lock
  if is_running; then
    log "already running"
  else
    cmd_build
    # What `up` itself runs (already there after a build on this machine, but the
    # cache may have come without them).
    apt_install etcd-server openssl curl iproute2
    # A failed start must not leave half a control plane running.
    trap 'stop_all' EXIT
    start_cluster
    trap - EXIT
  fi
  echo "$ADMIN_KUBECONFIG"
}

cmd_down() {
  [[ -d $CLUSTER_DIR ]] || return 0
  take_lock
  stop_all
  # Keep the logs for post-mortems; the rest is rebuilt by the next `up`.
  rm -rf "$CLUSTER_DIR/etcd" "$PKI" "$STATE" "$CLUSTER_DIR"/*.kubeconfig
  log "stopped"
}

cmd_status() {
  if is_running; then
    echo "running: https://$LOOPBACK:$APISERVER_PORT kubeconfig=$ADMIN_KUBECONFIG"
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
  echo "all listening sockets are on loopback"
}

case ${1:-} in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  check-listen) cmd_check_listen ;;
  *)
    sed -n '2,/^set -Eeuo/p' "$0" | sed -e '/^set -Eeuo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
