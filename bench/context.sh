#!/usr/bin/env bash
# Time of the context checksum in `strata build`: a generated context of 20,000 files (~520 MB: 100 files of
# 4 MiB, the rest 100 B to 10 kB, random bytes) and a Dockerfile that copies one small file, so a build whose
# steps are all cached spends its time walking and hashing the context for the context source's cache key.
#
# Usage: bench/context.sh [RUNS] [STRATA]   (default 10 runs; STRATA defaults to this checkout's release build)
#
# Three hyperfine runs: "remembered" (the digests of the last build are in <root>/context-hashes), "first"
# (that record deleted before each run, so every file is read), and "one thread" (first, with rayon limited to one
# thread). Run it with an older binary as STRATA to time the build before digests were remembered. The page cache
# is warm: every run reads the same files. The context lives under /var/tmp, never in the repository. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
strata=${2:-}
[[ $(id -u) == 0 ]] || { echo "context.sh: must run as root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "context.sh: needs hyperfine (apt package hyperfine)" >&2; exit 1; }
if [[ -z $strata ]]; then
  cargo build --release --quiet --bin strata
  strata=$PWD/target/release/strata
fi

work=/var/tmp/strata-context-bench
ctx=$work/ctx
if [[ ! -f $ctx/Dockerfile ]]; then
  rm -rf "$ctx"
  python3 - "$ctx" <<'EOF'
import os, random, sys
random.seed(1)
root = sys.argv[1]
for d in range(200):
    os.makedirs(f"{root}/dir{d:03}")
    for f in range(100):
        n = d * 100 + f
        size = 4 << 20 if n % 200 == 0 else random.randint(100, 10000)
        with open(f"{root}/dir{d:03}/f{f:03}.dat", "wb") as out:
            out.write(os.urandom(size))
EOF
  printf 'FROM scratch\nCOPY dir000/f001.dat /small\n' >"$ctx/Dockerfile"
  # Files written within a second of being hashed are read again by the next build (git's racy rule).
  sleep 1
fi
root=$(mktemp -d "$work/root.XXXXXX")
trap 'rm -rf "$root"' EXIT

build="$strata --root $root build --progress plain -o type=tar,dest=/dev/null $ctx"
$build >/dev/null 2>&1
forget="rm -rf $root/context-hashes"
hyperfine --runs "$runs" --warmup 1 --prepare true -n remembered "$build" \
  --prepare "$forget" -n first "$build" \
  --prepare "$forget" -n 'one thread' "RAYON_NUM_THREADS=1 $build"
