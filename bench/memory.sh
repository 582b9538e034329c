#!/usr/bin/env bash
# Peak memory of `strata build` when a RUN step writes a 1 GiB file, so the exporter diffs, tars, hashes and
# gzips a 1 GiB layer. Goal: under 200 MiB.
#
# Usage: bench/memory.sh [random|zero]   (default random: 1 GiB from /dev/urandom, incompressible;
#                                          zero: 1 GiB of zeros, which gzip shrinks a thousandfold)
#
# The image is FROM scratch with Debian's static busybox copied in, so no registry is involved. The build runs
# under GNU time -v (apt package `time`): its "Maximum resident set size" is the largest of strata and the
# processes it waited for (the container init, which is strata itself re-executed, the shell and `head`); each
# is counted alone, never summed. The strata process's own peak (VmHWM from /proc, sampled every 50 ms until it
# exits) is printed beside it. Needs root (RUN steps, overlay mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-random}
case $kind in
  random) source=/dev/urandom ;;
  zero) source=/dev/zero ;;
  *) echo "usage: bench/memory.sh [random|zero]" >&2; exit 2 ;;
esac
[[ $(id -u) == 0 ]] || { echo "memory.sh: must run as root" >&2; exit 1; }
missing=()
for p in time busybox-static bc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo build --release --quiet --bin strata
strata=$PWD/target/release/strata

work=$(mktemp -d /var/tmp/strata-memory.XXXXXX)
cleanup() {
  { findmnt -rn -o TARGET | grep -F "$work/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/ctx"
cp /bin/busybox "$work/ctx/busybox"
cat >"$work/ctx/Dockerfile" <<EOF
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 1073741824 $source > /big"]
EOF

/usr/bin/time -v -o "$work/time.txt" "$strata" --root "$work/root" build --progress plain -t bench/big "$work/ctx" \
  2>"$work/build.log" &
timer=$!
# The strata process is time's child; its VmHWM is its own peak RSS, read until it is gone.
hwm=0
while kill -0 "$timer" 2>/dev/null; do
  pid=$(pgrep -P "$timer" -x strata || true)
  if [[ -n $pid ]]; then
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    ((${kb:-0} > hwm)) && hwm=$kb
  fi
  sleep 0.05
done
wait "$timer" || { cat "$work/build.log" >&2; exit 1; }

max_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
elapsed=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
blob=$(find "$work/root/content" -type f -printf '%s\n' | sort -n | tail -n 1)
echo "data: 1 GiB from $source; largest blob (the layer) $(echo "scale=1; ${blob:-0} / 1048576" | bc) MiB; wall clock $elapsed"
echo "strata build peak RSS (GNU time, largest process of the tree): $((max_kb / 1024)) MiB ($max_kb KiB)"
echo "strata process alone (VmHWM, sampled):                        $((hwm / 1024)) MiB ($hwm KiB)"
