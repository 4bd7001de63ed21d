#!/usr/bin/env bash
# Checks a kseal-controller image archive (build.sh's output, or `docker save`/`podman save` of an
# OCI image) without a container engine: unpacks it with umoci and runs it with runc the way
# `kseal install`'s Deployment runs it: uid 1001 with supplementary group 65534 (fsGroup),
# read-only root filesystem, a tmpfs at /tmp, no capabilities, no new privileges.
#
# Usage: controller/image/check.sh IMAGE_ARCHIVE [--kubeconfig FILE] [--namespace NS]
#
# Always: the image's config (user 1001, entrypoint, PATH, ports, OCI labels), its files (the
# binary, libraries, CA bundle, passwd/group, an empty /tmp 1777; no shell, no package manager),
# and `kseal-controller --help` and `--version` inside the container.
# With --kubeconfig: the controller runs in the container against that cluster (host network,
# the kubeconfig bind-mounted read-only at /kubeconfig, --namespace NS, default kube-system, on
# free loopback ports) and must answer GET /healthz and /v1/cert.pem with a key Secret
# (label sealedsecrets.bitnami.com/sealed-secrets-key) in NS; the SealedSecret CRD is applied
# first. A local API server for it:
#   KSEAL_CLUSTER_DIR=/tmp/kseal-image-dev tests/control-plane/cluster.sh up   # prints the kubeconfig
#
# Needs root, umoci, runc, jq, tar; with --kubeconfig also curl and kubectl
# (Debian: apt-get install umoci runc jq curl kubernetes-client).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

log() { echo "check.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

archive=""
kubeconfig=""
namespace=kube-system
while [[ $# -gt 0 ]]; do
    case $1 in
        --kubeconfig) [[ $# -ge 2 ]] || die "--kubeconfig needs a file"; kubeconfig=$2; shift 2 ;;
        --namespace | -n) [[ $# -ge 2 ]] || die "--namespace needs a name"; namespace=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z $archive ]] || die "one archive only"; archive=$1; shift ;;
    esac
done
[[ -n $archive ]] || die "usage: check.sh IMAGE_ARCHIVE [--kubeconfig FILE] [--namespace NS]"
[[ -f $archive ]] || die "$archive is not a file"
[[ $(id -u) -eq 0 ]] || die "runc needs root"
need=(umoci runc jq tar)
[[ -z $kubeconfig ]] || need+=(curl kubectl)
for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install umoci runc jq curl kubernetes-client)"
done
if [[ -n $kubeconfig ]]; then
    [[ -f $kubeconfig ]] || die "--kubeconfig $kubeconfig is not a file"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kseal-image-check.XXXXXX")
id=kseal-image-check-$$
runc_root=$work/runc
runc_() { runc --root "$runc_root" "$@"; }
cleanup() {
    if [[ -d $runc_root ]]; then
        runc_ kill "$id" KILL 2>/dev/null || true
        runc_ delete -f "$id" 2>/dev/null || true
    fi
    if [[ -n ${runc_pid:-} ]]; then wait "$runc_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- the image -------------------------------------------------------------------------------
mkdir "$work/layout"
tar -xf "$archive" -C "$work/layout"
[[ -f $work/layout/index.json && -f $work/layout/oci-layout ]] ||
    die "$archive is not an OCI archive (no index.json / oci-layout)"
refs=$(jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"] // empty' "$work/layout/index.json")
[[ $(wc -l <<<"$refs") -eq 1 && -n $refs ]] || die "expected one named manifest in index.json, found: ${refs:-none}"
ref=$refs
[[ $ref == */*:* ]] || die "ref name $ref is not a full reference (REGISTRY/NAME:TAG): ctr images import would rename it"
log "image $ref"
blob() { echo "$work/layout/blobs/${1/://}"; }
manifest=$(blob "$(jq -r '.manifests[0].digest' "$work/layout/index.json")")
config=$(blob "$(jq -r '.config.digest' "$manifest")")
version=$(awk '/^\[/ { p = ($0 == "[workspace.package]") } p && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' "$repo/Cargo.toml")

expect() { # expect WHAT ACTUAL WANTED
    [[ $2 == "$3" ]] || die "$1: $2, expected $3"
    log "ok: $1 = $2"
}
cfg() { jq -c "$1" "$config"; }
expect "config user" "$(cfg .config.User)" '"1001"'
expect "entrypoint" "$(cfg .config.Entrypoint)" '["/usr/local/bin/kseal-controller"]'
expect "cmd" "$(cfg '.config.Cmd // null')" 'null'
expect "PATH" "$(cfg '.config.Env | map(select(startswith("PATH="))) | .[0]')" '"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
expect "exposed ports" "$(cfg '.config.ExposedPorts | keys')" '["8080/tcp","8081/tcp"]'
expect "os/architecture" "$(cfg '.os + "/" + .architecture')" "\"linux/$(case $(uname -m) in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac)\""
label() { cfg ".config.Labels[\"org.opencontainers.image.$1\"] // \"\"" | jq -r .; }
expect "label version" "$(label version)" "$version"
expect "label licenses" "$(label licenses)" "Apache-2.0"
expect "label title" "$(label title)" "kseal-controller"
for l in revision description; do
    value=$(label $l)
    [[ -n $value ]] || die "no label org.opencontainers.image.$l"
    [[ $value != unknown ]] || log "warning: label org.opencontainers.image.$l is 'unknown'"
    log "ok: label $l = $value"
done

# --- its files -------------------------------------------------------------------------------
log "umoci unpack"
umoci unpack --image "$work/layout:$ref" "$work/bundle" >&2
rootfs=$work/bundle/rootfs
(cd "$rootfs" && find . -mindepth 1 \( -type f -o -type l \) -printf '%P %m %s\n' | LC_ALL=C sort) >"$work/files"
log "files in the image:"
sed 's/^/    /' "$work/files" >&2
while read -r path mode _; do
    case $path in
        usr/local/bin/kseal-controller) [[ $mode == 755 ]] || die "$path has mode $mode" ;;
        etc/ssl/certs/ca-certificates.crt | etc/passwd | etc/group | etc/nsswitch.conf) ;;
        lib/* | lib64/* | usr/lib/* | usr/lib64/*)
            [[ $path == *.so* ]] || die "unexpected file $path (not a shared library)" ;;
        *) die "unexpected file in the image: $path" ;;
    esac
done <"$work/files"
for f in usr/local/bin/kseal-controller etc/ssl/certs/ca-certificates.crt etc/passwd etc/group; do
    [[ -f $rootfs/$f ]] || die "the image has no /$f"
done
for shell in bin/sh bin/bash usr/bin/sh usr/bin/bash bin/busybox usr/bin/apt usr/bin/dpkg sbin/apk; do
    [[ ! -e $rootfs/$shell ]] || die "the image has /$shell"
done
[[ -d $rootfs/tmp && -z $(ls -A "$rootfs/tmp") ]] || die "/tmp is not an empty directory"
expect "/tmp mode" "$(stat -c %a "$rootfs/tmp")" 1777
expect "passwd uid 1001" "$(awk -F: '$3 == 1001 { print $1 ":" $3 ":" $4 }' "$rootfs/etc/passwd")" "kseal:1001:1001"
[[ -n $(awk -F: '$3 == 1001' "$rootfs/etc/group") ]] || die "/etc/group has no gid 1001"
log "ok: $(grep -c . "$work/files") files, $(du -sh "$rootfs" | cut -f1) unpacked"

# --- runc ------------------------------------------------------------------------------------
# umoci wrote the runtime config from the image's (user, entrypoint, env); make it the Pod's.
orig=$work/bundle/config.json.orig
mv "$work/bundle/config.json" "$orig"
expect "runtime uid/gid" "$(jq -c '[.process.user.uid, .process.user.gid]' "$orig")" "[1001,1001]"
runtime_config() { # runtime_config EXTRA_JSON_ARGS [KUBECONFIG]
    jq --argjson extra "$1" --arg kubeconfig "${2:-}" '
        .root.readonly = true
        | .process.terminal = false
        | .process.args += $extra
        | .process.user.additionalGids = [65534]
        | .process.noNewPrivileges = true
        | .process.capabilities = {bounding: [], effective: [], inheritable: [], permitted: [], ambient: []}
        | .process.env += ["RUST_BACKTRACE=1"]
        | .linux.namespaces |= map(select(.type != "network"))
        | .mounts += [{destination: "/tmp", type: "tmpfs", source: "tmpfs",
                       options: ["nosuid", "nodev", "noexec", "mode=1777", "size=16m"]}]
        | if $kubeconfig != "" then
            .mounts += [{destination: "/kubeconfig", type: "bind", source: $kubeconfig,
                         options: ["rbind", "ro", "nosuid", "nodev", "noexec"]}]
          else . end
    ' "$orig" >"$work/bundle/config.json"
}
mkdir -p "$runc_root"
run_once() { # run_once JSON_ARGS: runs the container in the foreground, prints its output
    runtime_config "$1"
    runc_ run --bundle "$work/bundle" "$id-once" </dev/null
}
out=$(run_once '["--version"]' 2>&1) || die "kseal-controller --version failed: $out"
expect "--version" "$out" "controller version: v$version"
out=$(run_once '["--help"]' 2>&1) || die "kseal-controller --help failed: $out"
grep -q -- '--kubeconfig' <<<"$out" || die "--help does not mention --kubeconfig: $out"
log "ok: --help ($(wc -l <<<"$out") lines)"

if [[ -z $kubeconfig ]]; then
    log "PASS (static checks, --help, --version; give --kubeconfig to run it against a cluster)"
    exit 0
fi

# --- against a cluster -----------------------------------------------------------------------
kube() { kubectl --kubeconfig "$kubeconfig" "$@"; }
kube apply -f "$repo/crds/sealedsecret-crd.yaml" >&2
kube wait --for=condition=Established --timeout=60s crd/sealedsecrets.bitnami.com >&2
key_label=sealedsecrets.bitnami.com/sealed-secrets-key
before=$(kube -n "$namespace" get secret -l "$key_label" -o name | sort)
# uid 1001 reads the kubeconfig through a copy of its own (the original may be root's, 0600).
install -m 0400 -o 1001 -g 1001 "$kubeconfig" "$work/kubeconfig"
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        ss -Htln "sport = :$port" | grep -q . || { echo "$port"; return; }
    done
}
http=127.0.0.1:$(free_port)
metrics=127.0.0.1:$(free_port)
runtime_config "$(jq -cn --arg ns "$namespace" --arg http "$http" --arg metrics "$metrics" \
    '["--kubeconfig", "/kubeconfig", "--namespace", $ns, "--listen-addr", $http,
      "--listen-metrics-addr", $metrics, "--key-size", "2048"]')" "$work/kubeconfig"
log "starting the controller in the container (http $http, metrics $metrics, namespace $namespace)"
runc_ run --bundle "$work/bundle" "$id" </dev/null >"$work/controller.log" 2>&1 &
runc_pid=$!
deadline=$((SECONDS + 90))
until curl -fsS "http://$http/v1/cert.pem" -o "$work/cert.pem" 2>/dev/null; do
    if ! kill -0 "$runc_pid" 2>/dev/null; then
        cat "$work/controller.log" >&2
        die "the controller exited before it served /v1/cert.pem"
    fi
    if ((SECONDS > deadline)); then
        tail -40 "$work/controller.log" >&2
        die "no /v1/cert.pem after 90 s"
    fi
    sleep 1
done
grep -q 'BEGIN CERTIFICATE' "$work/cert.pem" || die "/v1/cert.pem is not a PEM certificate: $(head -c 200 "$work/cert.pem")"
log "ok: GET /v1/cert.pem: a certificate"
expect "GET /healthz" "$(curl -s -o /dev/null -w '%{http_code}' "http://$http/healthz")" 200
expect "GET /metrics" "$(curl -s -o /dev/null -w '%{http_code}' "http://$metrics/metrics")" 200
after=$(kube -n "$namespace" get secret -l "$key_label" -o name | sort)
[[ -n $after ]] || die "no key Secret in $namespace"
new=$(comm -13 <(echo "$before") <(echo "$after"))
log "ok: key Secrets in $namespace: $(tr '\n' ' ' <<<"$after")${new:+(new: $(tr '\n' ' ' <<<"$new"))}"
pid=$(runc_ state "$id" | jq -r .pid)
expect "process uid" "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" 1001
expect "process groups" "$(awk '/^Groups:/ { $1 = ""; print substr($0, 2) }' "/proc/$pid/status")" "65534"
expect "root filesystem" "$(awk '$5 == "/" { split($6, o, ","); print o[1] }' "/proc/$pid/mountinfo")" ro
expect "/tmp" "$(awk '$5 == "/tmp" { print $(NF - 2) }' "/proc/$pid/mountinfo")" tmpfs

runc_ kill "$id" TERM
status=0
wait "$runc_pid" || status=$?
runc_pid=""
[[ $status -eq 0 ]] || { tail -20 "$work/controller.log" >&2; die "the controller exited with $status after SIGTERM"; }
log "ok: exit 0 after SIGTERM"
runc_ delete -f "$id" 2>/dev/null || true
log "PASS (static checks, --help, --version, the controller against the cluster)"
