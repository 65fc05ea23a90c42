#!/usr/bin/env bash
# An aarch64 CPython for the Lambda harness (tests/lambda_harness.py), from Debian's packages: trixie's
# python3.13 for arm64, only extracted (mmdebstrap --variant=extract: no maintainer scripts, no chroot),
# run on x86 by qemu-aarch64 -L <root>; libstdc++ as in Lambda's base image. Idempotent; the root lands in
# $NIMBUS_HARNESS_CACHE.
set -euo pipefail
cache="${NIMBUS_HARNESS_CACHE:-/var/cache/nimbus-harness}"
root="$cache/trixie-arm64"
[ -x "$root/usr/bin/python3.13" ] && [ -e "$root/usr/lib/aarch64-linux-gnu/libstdc++.so.6" ] && exit 0
rm -rf "$root"
mkdir -p "$cache"
rm -rf "$root.partial"
mmdebstrap --quiet --variant=extract --architectures=arm64 \
  --include=python3.13-minimal,libpython3.13-stdlib,libpython3.13-minimal,libstdc++6,libgcc-s1,zlib1g \
  trixie "$root.partial" http://deb.debian.org/debian
# merged /usr as base-files' scripts would make it (the loader is /lib/ld-linux-aarch64.so.1)
for d in bin lib sbin; do [ -e "$root.partial/$d" ] || ln -s "usr/$d" "$root.partial/$d"; done
# qemu -L looks in the root first: no /tmp or /opt there, so the function's own (tmpfs, layer) are used
rm -rf "$root.partial/tmp" "$root.partial/opt"
mv "$root.partial" "$root"
