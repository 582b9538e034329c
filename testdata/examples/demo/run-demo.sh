#!/usr/bin/env bash
# Builds and runs the demo image with no registry: lays out a busybox base like Docker Hub's from the host's
# busybox-static, builds the three-stage Dockerfile beside this script as demo:latest, and runs it.
# STRATA is the strata binary (default: target/release/strata); STRATA_ROOT, if set, is strata's store.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
strata="${STRATA:-$here/../../../target/release/strata}"
busybox=/bin/busybox
# The base image has no libc, so it needs the statically linked busybox; on a fresh machine, install it.
# (ldd exits 1 on a static binary, so its output is what tells.)
is_static() { [[ -x "$busybox" ]] && [[ "$(LC_ALL=C ldd "$busybox" 2>&1 || true)" == *"not a dynamic executable"* ]]; }
if ! is_static; then
    if [[ "$(id -u)" != 0 ]]; then
        echo "run-demo.sh: $busybox is missing or not static; install Debian's busybox-static as root" >&2
        exit 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    is_static || { echo "run-demo.sh: installing busybox-static did not give a static $busybox" >&2; exit 1; }
fi

# The context is a temporary copy, so the generated rootfs never lands in the source tree.
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$here/greet.sh" "$context/"

rootfs="$context/rootfs"
mkdir -p "$rootfs"/{bin,etc,root,tmp,proc,sys,dev,home,usr/sbin,var/spool/mail,var/www}
cp "$busybox" "$rootfs/bin/busybox"
# Each applet is a hard link to /bin/busybox, as in Docker Hub's image.
for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] || ln -f "$rootfs/bin/busybox" "$rootfs/bin/$applet"
done
cp "$here/etc/passwd" "$here/etc/group" "$rootfs/etc/"
printf 'root::10933:0:99999:7:::\n' > "$rootfs/etc/shadow"
chmod 0600 "$rootfs/etc/shadow"
chmod 0755 "$rootfs/root"
chmod 1777 "$rootfs/tmp"

"$strata" build --progress plain -t demo:latest "$context"
"$strata" run --rm demo:latest
