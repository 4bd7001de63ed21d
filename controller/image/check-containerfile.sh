#!/usr/bin/env bash
# Checks that the Containerfile's final stage makes the image build.sh makes, on a machine with
# no registry: the build stage needs the Rust toolchain image, so it is replaced by the files
# rootfs.sh lays out from BINARY (what the build stage runs too), and the final stage, taken
# verbatim from the Containerfile, is built by Buildah (vfs storage in a temporary directory).
# Its config (less Buildah's own io.buildah.version label) and its layer's entries (path, mode,
# owner, size) must equal those of build.sh's image of the same binary and revision.
#
# Usage: controller/image/check-containerfile.sh BINARY
# Needs root, buildah, umoci, jq, tar (Debian: apt-get install buildah umoci jq).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "check-containerfile.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ $# -eq 1 ]] || die "usage: check-containerfile.sh BINARY"
binary=$1
[[ -x $binary ]] || die "$binary is not an executable"
[[ $(id -u) -eq 0 ]] || die "needs root (buildah with vfs storage)"
for tool in buildah umoci jq tar; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install buildah umoci jq)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kseal-containerfile-check.XXXXXX")
bah() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
cleanup() {
    bah rmi --all >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
export REVISION=${REVISION:-containerfile-check}
ref=localhost/kseal-controller:containerfile-check

log "build.sh --binary $binary"
"$here/build.sh" --binary "$binary" -o "$work/build-sh.oci.tar" -t "$ref" >/dev/null

log "the Containerfile's final stage with buildah"
mkdir "$work/context"
"$here/rootfs.sh" "$binary" "$work/context/rootfs" 2>/dev/null
grep -q '^FROM scratch$' "$here/Containerfile" || die "the Containerfile has no 'FROM scratch' line"
{
    echo 'FROM scratch AS build'
    echo 'COPY rootfs/ /rootfs/'
    sed -n '/^FROM scratch$/,$p' "$here/Containerfile"
} >"$work/Containerfile"
bah bud --layers=false --build-arg "REVISION=$REVISION" -f "$work/Containerfile" -t "$ref" \
    "$work/context" >&2
bah push "$ref" "oci-archive:$work/containerfile.oci.tar:$ref" >&2

# describe ARCHIVE DIR: the config and the layer's entries of the archive's only image.
describe() {
    mkdir "$2"
    tar -xf "$1" -C "$2"
    local manifest config
    manifest=$2/blobs/$(jq -r '.manifests[0].digest | sub(":"; "/")' "$2/index.json")
    config=$2/blobs/$(jq -r '.config.digest | sub(":"; "/")' "$manifest")
    [[ $(jq '.layers | length' "$manifest") -eq 1 ]] || die "$1 has $(jq '.layers | length' "$manifest") layers"
    jq -S '.config | .Labels |= del(."io.buildah.version")' "$config" >"$2.config"
    tar -tvzf "$2/blobs/$(jq -r '.layers[0].digest | sub(":"; "/")' "$manifest")" |
        awk '{ print $1, $2, $3, $6 }' | sed -E 's#^(.* )\./#\1#; s#/$##' | LC_ALL=C sort -k4 >"$2.files"
}
describe "$work/build-sh.oci.tar" "$work/a"
describe "$work/containerfile.oci.tar" "$work/b"
diff -u "$work/a.config" "$work/b.config" >&2 || die "the image configs differ (build.sh -, Containerfile +)"
diff -u "$work/a.files" "$work/b.files" >&2 || die "the layers' entries differ (build.sh -, Containerfile +)"
log "PASS: same config, same $(grep -c . "$work/a.files") layer entries"
