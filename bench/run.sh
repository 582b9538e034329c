#!/usr/bin/env bash
# Container start-to-exit time of `true` in a busybox rootfs: `strata run` against `runc run` on the same rootfs,
# in the same hyperfine invocation. Needs root, runc, hyperfine and busybox-static (.ci/run installs them).
# Usage: bench/run.sh [hyperfine options...]   (figures go into docs/benchmarks.md, section "Runtime")
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "bench/run.sh: needs root (namespaces, mounts)" >&2; exit 1; }
for tool in runc hyperfine busybox; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release --quiet --bin strata
strata=$PWD/target/release/strata

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The same layout as testkit::busybox_rootfs, without needing the test build.
mkdir -p "$work/bundle/rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for applet in sh true; do ln "$work/bundle/rootfs/bin/busybox" "$work/bundle/rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/bundle/rootfs/etc/group"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/' config.json)

hyperfine --warmup 5 -N "${@:---min-runs=100}" \
  --command-name "strata run (overlay over the rootfs)" "$strata run --network none dir:$work/bundle/rootfs true" \
  --command-name "runc run" "runc run --bundle $work/bundle bench-runc-$$"
