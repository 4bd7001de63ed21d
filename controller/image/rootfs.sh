#!/usr/bin/env bash
# Assembles the root filesystem of the kseal-controller image in DEST from a built BINARY.
# One script for both builds: the Containerfile's build stage runs it (libraries from the
# Rust toolchain image) and build.sh runs it on the host, so both images hold the same files:
#
#   /usr/local/bin/kseal-controller        the binary (0755), debug info stripped
#   <every library ldd names>              copied at the path ldd prints (symlinks resolved), e.g.
#                                          /lib/x86_64-linux-gnu/libc.so.6, /lib64/ld-linux-x86-64.so.2
#   /etc/ssl/certs/ca-certificates.crt     the CA bundle of the build machine
#   /etc/passwd, /etc/group                root, kseal (uid/gid 1001), nobody/nogroup (65534)
#   /etc/nsswitch.conf                     "hosts: files dns", as glibc's resolver expects
#   /tmp                                   empty, 1777 (the install mounts an emptyDir there)
#
# Nothing else: no shell, no package manager, no ld.so.cache (the dynamic loader finds the
# libraries in its built-in directories). Everything is owned by root; build.sh writes the
# layer with uid/gid 0 and fixed mtimes.
#
# Usage: rootfs.sh BINARY DEST      (DEST must not exist or be empty)
# Environment: CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail

die() { echo "rootfs.sh: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: rootfs.sh BINARY DEST"
binary=$1
dest=$2
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

[[ -f $binary && -x $binary ]] || die "$binary is not an executable file"
[[ -f $ca_bundle ]] || die "no CA bundle at $ca_bundle (Debian: apt-get install ca-certificates)"
command -v ldd >/dev/null || die "ldd is missing (Debian: package libc-bin)"
if [[ -e $dest ]] && [[ -n $(ls -A "$dest") ]]; then
    die "$dest exists and is not empty"
fi

umask 022
mkdir -p "$dest"/usr/local/bin "$dest"/etc/ssl/certs "$dest"/tmp
install -m 0755 "$binary" "$dest"/usr/local/bin/kseal-controller
# The release profile keeps debug info (for profiling): 100 of the binary's 126 MB. The image
# drops it; the symbol table stays, so a backtrace still names functions.
command -v objcopy >/dev/null || die "objcopy is missing (Debian: package binutils)"
objcopy --strip-debug "$dest"/usr/local/bin/kseal-controller

# The libraries: `ldd` prints "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" for each
# library and "/lib64/ld-linux-x86-64.so.2 (0x...)" for the loader (the binary's PT_INTERP);
# linux-vdso.so.1 has no file. A library ldd cannot find is an error, not a broken image.
ldd_out=$(ldd "$binary") || die "ldd $binary failed: $ldd_out"
if grep -q 'not found' <<<"$ldd_out"; then
    die "ldd cannot find a library of $binary:"$'\n'"$ldd_out"
fi
libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u)
[[ -n $libs ]] || die "ldd names no library for $binary (a static binary needs no rootfs.sh):"$'\n'"$ldd_out"
for lib in $libs; do
    mkdir -p "$dest$(dirname "$lib")"
    # -L: the file, not the symlink chain (Debian's /lib64 and /lib are symlinks into /usr).
    cp -L "$lib" "$dest$lib"
    chmod 0755 "$dest$lib"
    echo "rootfs.sh: $lib" >&2
done

install -m 0644 "$ca_bundle" "$dest"/etc/ssl/certs/ca-certificates.crt

# uid 1001 is what `kseal install` runs the pod as (runAsUser 1001, fsGroup 65534); the names
# let tools inside and outside the container print users instead of numbers.
cat >"$dest"/etc/passwd <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
kseal:x:1001:1001:kseal-controller:/nonexistent:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"$dest"/etc/group <<'EOF'
root:x:0:
kseal:x:1001:
nogroup:x:65534:
EOF
# Without it glibc asks DNS before /etc/hosts (which the kubelet mounts).
cat >"$dest"/etc/nsswitch.conf <<'EOF'
hosts: files dns
EOF
chmod 0644 "$dest"/etc/passwd "$dest"/etc/group "$dest"/etc/nsswitch.conf

chmod 0755 "$dest" "$dest"/usr "$dest"/usr/local "$dest"/usr/local/bin "$dest"/etc \
    "$dest"/etc/ssl "$dest"/etc/ssl/certs
find "$dest" -mindepth 1 -type d ! -path "$dest/tmp" -exec chmod 0755 {} +
chmod 1777 "$dest"/tmp
