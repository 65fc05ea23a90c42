#!/usr/bin/env bash
# A CPython of one minor for one arch for the Lambda harness (tests/lambda_harness.py), from Debian's
# packages: usage `debian-python.sh SUITE ARCH MINOR`, e.g. `forky amd64 3.14` (Lambda's python3.14 runtime:
# no pyenv here has it) or `trixie arm64 3.13`. The packages are only extracted (mmdebstrap --variant=extract:
# no maintainer scripts, no chroot needed to make it); the harness runs the root's python in a chroot (the
# host's arch) or under `qemu-aarch64 -L <root>` (arm64 on x86). libstdc++ as in Lambda's base image.
# Also writes <root>/usr/bin/pythonX.Y-host (host arch only): the root's python through the root's own
# loader, runnable outside the chroot, to precompile a layer's .pyc (a .pyc is the same for both arches).
# Idempotent and locked: the root lands in $NIMBUS_HARNESS_CACHE/SUITE-ARCH, renamed into place when whole.
set -euo pipefail
suite="$1" arch="$2" minor="$3"
cache="${NIMBUS_HARNESS_CACHE:-/var/cache/nimbus-harness}"
root="$cache/$suite-$arch"
mkdir -p "$cache"
exec 9>"$cache/.$suite-$arch.lock"
flock 9
ready() { [ -x "$root/usr/bin/python$minor" ] && [ -e "$root/.nimbus-ready" ]; }
ready && exit 0
rm -rf "$root" "$root.partial"
# A testing suite's Release is valid for a week; the mirror this machine reaches can lag its clock by more.
# Signatures are still checked (Debian's archive keyring), only the freshness date is not.
mmdebstrap --quiet --variant=extract --architectures="$arch" --aptopt='Acquire::Check-Valid-Until "false"' \
  --include="python$minor-minimal,libpython$minor-stdlib,libpython$minor-minimal,libstdc++6,libgcc-s1,zlib1g" \
  "$suite" "$root.partial" http://deb.debian.org/debian
p="$root.partial"
# merged /usr as base-files' scripts would make it (the loader is /lib/ld-linux-*.so.*, /lib64 on amd64)
for d in bin lib sbin lib64; do [ -e "$p/$d" ] || [ ! -d "$p/usr/$d" ] || ln -s "usr/$d" "$p/$d"; done
# qemu -L looks in the root first: no /tmp or /opt there, so the function's own (tmpfs, layer) are used;
# a chroot gets them as mount points (and /proc, /dev, /var/task, /var/runtime) instead
rm -rf "$p/tmp" "$p/opt"
if [ "$(dpkg --print-architecture)" = "$arch" ]; then
  mkdir -p "$p/tmp" "$p/opt" "$p/proc" "$p/dev" "$p/var/task" "$p/var/runtime"
  triplet="$(ls -d "$p"/usr/lib/*-linux-gnu | head -1)"
  loader=""
  for candidate in "$p"/usr/lib64/ld-linux-*.so.* "$p"/usr/lib/ld-linux-*.so.*; do
    [ -e "$candidate" ] && loader="${candidate#"$p"/}" && break
  done
  [ -n "$loader" ] || { echo "no dynamic loader in $p" >&2; exit 1; }
  cat > "$p/usr/bin/python$minor-host" <<WRAP
#!/bin/sh
# Debian $suite's python$minor outside its root: its own loader and libraries; --argv0 makes sys.executable
# this script, so the interpreter's own subprocesses (compileall's workers) start the same way.
r="\$(cd "\$(dirname "\$0")/../.." && pwd -P)"
exec "\$r/$loader" --argv0 "\$r/usr/bin/python$minor-host" --library-path "\$r/usr/lib/$(basename "$triplet")" "\$r/usr/bin/python$minor" "\$@"
WRAP
  chmod +x "$p/usr/bin/python$minor-host"
fi
# the standard library's .pyc, as the package's postinst (py3compile) would write them: the extract runs no
# maintainer scripts, and the harness mounts the root read-only, so without them every start compiles it.
# A .pyc is the same on every arch: the host-arch root of the same suite compiles the other arch's too.
host="$(dpkg --print-architecture)"
if [ "$host" = "$arch" ]; then
  compiler="$p/usr/bin/python$minor-host"
else
  bash "$0" "$suite" "$host" "$minor"
  compiler="$cache/$suite-$host/usr/bin/python$minor-host"
fi
"$compiler" -I -m compileall -q -j 0 "$p/usr/lib/python$minor" >/dev/null
touch "$p/.nimbus-ready"
mv "$p" "$root"
