#!/usr/bin/env bash
# Builds the kseal-controller image without a container engine or a registry: the release
# binary with cargo, the root filesystem with rootfs.sh (the host's libraries, as ldd names
# them), and an OCI image with umoci, written as an OCI archive (a tar of an OCI image layout,
# what `ctr images import`, `skopeo copy oci-archive:...` and `podman load` read).
#
# The image is the one the Containerfile's final stage describes: same files (rootfs.sh), user
# 1001, entrypoint, environment, ports and labels. Differences: the libraries come from this
# machine instead of the Rust toolchain image, and the single layer has fixed mtimes and owner
# 0:0, so two builds of the same commit on the same machine give the same image digest.
#
# Usage: controller/image/build.sh [-o ARCHIVE] [-t REFERENCE] [--binary PATH]
#   -o ARCHIVE      where to write the OCI archive (default: kseal-controller-v<version>.oci.tar)
#   -t REFERENCE    the image reference stored in the archive (index.json annotation
#                   org.opencontainers.image.ref.name; default localhost/kseal-controller:v<version>);
#                   a full reference, so that `ctr images import` keeps it as it is
#   --binary PATH   use this kseal-controller binary instead of building one
#
# Prints the image reference as the last line of stdout; progress goes to stderr.
# Environment: CARGO_TARGET_DIR (default: the workspace's target directory), REVISION (default:
# `git rev-parse HEAD`), SOURCE_DATE_EPOCH (default: the commit's time; the mtime of every file
# and the image's creation time).
# Needs: cargo, ldd, tar, umoci (Debian: apt-get install umoci).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

log() { echo "build.sh: $*" >&2; }
die() { log "$*"; exit 1; }

version=$(awk '
    /^\[/ { in_pkg = ($0 == "[workspace.package]") }
    in_pkg && $1 == "version" { gsub(/"/, "", $3); print $3; exit }
' "$repo/Cargo.toml")
[[ -n $version ]] || die "no version in [workspace.package] of $repo/Cargo.toml"

out=""
ref=""
binary=""
while [[ $# -gt 0 ]]; do
    case $1 in
        -o) [[ $# -ge 2 ]] || die "-o needs a path"; out=$2; shift 2 ;;
        -t) [[ $# -ge 2 ]] || die "-t needs a reference"; ref=$2; shift 2 ;;
        --binary) [[ $# -ge 2 ]] || die "--binary needs a path"; binary=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
out=${out:-kseal-controller-v$version.oci.tar}
ref=${ref:-localhost/kseal-controller:v$version}
# The OCI ref.name grammar (components of [A-Za-z0-9] joined by - . _ : @ + or --, separated
# by /); containerd keeps a name with a / or : as a full reference.
if ! [[ $ref =~ ^[A-Za-z0-9]+([-._:@+]+[A-Za-z0-9]+)*(/[A-Za-z0-9]+([-._:@+]+[A-Za-z0-9]+)*)*$ && $ref == */*:* ]]; then
    die "-t $ref: give a full reference, REGISTRY/NAME:TAG (e.g. localhost/kseal-controller:dev)"
fi
command -v umoci >/dev/null || die "umoci is missing (Debian: apt-get install umoci)"

if [[ -z ${REVISION:-} ]]; then
    REVISION=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
    if [[ $REVISION != unknown ]] && [[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
        log "warning: the work tree has uncommitted changes; the revision label says $REVISION"
    fi
fi
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)
fi
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

if [[ -z $binary ]]; then
    log "building the release kseal-controller (cargo build --release --locked)"
    start=$SECONDS
    (cd "$repo" && cargo build --release --locked -p kseal-controller) >&2
    target_dir=${CARGO_TARGET_DIR:-}
    if [[ -z $target_dir ]]; then
        target_dir=$(cd "$repo" && cargo metadata --no-deps --format-version 1 |
            grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
    fi
    # cargo ran in $repo: a relative CARGO_TARGET_DIR is relative to it.
    [[ $target_dir == /* ]] || target_dir=$repo/$target_dir
    binary=$target_dir/release/kseal-controller
    log "cargo took $((SECONDS - start)) s"
fi
[[ -x $binary ]] || die "$binary is not an executable"

work=$(mktemp -d "${TMPDIR:-/tmp}/kseal-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "assembling the root filesystem"
"$here/rootfs.sh" "$binary" "$work/rootfs"
# Same mtime everywhere, so the layer does not depend on when the files were copied.
find "$work/rootfs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$work/rootfs" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$work/files"
tar -C "$work/rootfs" --create --file "$work/layer.tar" --format=gnu --no-recursion \
    --owner=0 --group=0 --numeric-owner --files-from "$work/files"

log "writing the OCI image $ref"
case $(uname -m) in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
esac
layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:$ref"
umoci raw add-layer --image "$layout:$ref" \
    --history.created "$created" --history.created_by "controller/image/rootfs.sh" \
    --history.comment "kseal-controller v$version, $REVISION" "$work/layer.tar"
# The Containerfile's USER, ENV, EXPOSE, ENTRYPOINT and LABEL lines, in the same words.
umoci config --image "$layout:$ref" --no-history \
    --created "$created" --os linux --architecture "$arch" \
    --config.user 1001 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.entrypoint /usr/local/bin/kseal-controller \
    --config.exposedports 8080/tcp --config.exposedports 8081/tcp \
    --config.label "org.opencontainers.image.title=kseal-controller" \
    --config.label "org.opencontainers.image.description=The kseal controller: unseals SealedSecrets into Secrets, owns the sealing keys" \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.revision=$REVISION" \
    --config.label "org.opencontainers.image.licenses=Apache-2.0"
umoci gc --layout "$layout"

# An OCI archive is the image layout as a tar (what skopeo's oci-archive: transport writes).
# umoci writes its blobs 0600; readable ones extract for anyone.
chmod -R a+rX "$layout"
find "$layout" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$layout" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) >"$work/layout-files"
mkdir -p "$(dirname "$out")"
tar -C "$layout" --create --file "$work/image.tar" --format=gnu --no-recursion \
    --owner=0 --group=0 --numeric-owner --files-from "$work/layout-files"
mv "$work/image.tar" "$out"
log "wrote $out ($(du -h "$out" | cut -f1); rootfs $(du -sh "$work/rootfs" | cut -f1))"
echo "$ref"
