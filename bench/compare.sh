#!/usr/bin/env bash
# `strata build` against buildah and podman (and docker with BuildKit when installed) on the same Dockerfiles, in
# the same run: one hyperfine invocation per scenario times every tool (each with its own --prepare), then a table
# of medians and strata/buildah, strata/podman ratios is printed.
#
# Usage: bench/compare.sh [RUNS]            (default 10 timed runs per tool and scenario)
#   TOOLS="strata buildah podman docker"    which tools to time (default: all; docker only when installed)
#   RESULTS=DIR                             where the raw hyperfine JSON/markdown and summary go
#                                           (default /var/tmp/strata-compare-results.<UTC time>)
#
# Self-contained, nothing of the machine's configuration is written: it apt-installs missing Debian packages
# (buildah podman runc hyperfine jq docker-registry skopeo umoci busybox-static bc ...), starts a distribution registry
# on a free 127.0.0.1 port with a throwaway config, pushes a busybox base image it lays out itself (applets as hard
# links, like Docker Hub's), builds strata in release mode, and gives every tool a private store under a temp dir.
# buildah and podman get their settings per invocation: CONTAINERS_CONF (runc, because crun rejects this kernel's
# cgroup v1 hybrid layout; cgroupfs; file events; ulimits within this VM's hard limits), CONTAINERS_REGISTRIES_CONF
# (the local registry marked insecure), CONTAINERS_STORAGE_CONF (overlay) and --root/--runroot. strata gets
# --root and a --config naming the registry `http = true`.
#
# Scenarios (Dockerfile "app": FROM the local busybox, RUN, COPY . /app, RUN):
#   cold        empty store before each run: base pulled from the local registry, every step executed
#   cached      nothing changed since the previous build: every step from the cache
#   edit        one context file rewritten before each run: COPY and the RUN after it run again
#   multistage  two independent stages that each burn ~0.3 s of CPU in a shell loop, and a final stage copying
#               from both; --no-cache with the base image present, so every run executes both stages;
#               buildah and podman get --jobs 2 so they may run the two stages in parallel, as strata does
# RUN steps use the host network with every tool (strata's default; --network host for the others), so no tool
# pays for a network namespace the others skip.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
read -r -a tools <<<"${TOOLS:-strata buildah podman docker}"
results=${RESULTS:-/var/tmp/strata-compare-results.$(date -u +%Y%m%dT%H%M%SZ)}

[[ $(id -u) == 0 ]] || { echo "compare.sh: must run as root (RUN steps, overlay mounts)" >&2; exit 1; }

# ---- packages
packages=(buildah podman runc conmon hyperfine jq docker-registry skopeo umoci busybox-static curl bc iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
has_docker() { [[ -x /usr/bin/docker && -x /usr/sbin/dockerd ]]; }
if [[ " ${tools[*]} " == *" docker "* ]] && ! has_docker; then
  echo "compare.sh: SKIPPING docker: /usr/bin/docker and /usr/sbin/dockerd are not installed (apt-get install docker.io)" >&2
  tools=("${tools[@]/docker/}")
fi
read -r -a tools <<<"${tools[*]}"
[[ ${tools[0]:-} == strata ]] || { echo "compare.sh: TOOLS must start with strata (ratios are strata/TOOL)" >&2; exit 2; }

cargo build --release --quiet --bin strata
strata=$PWD/target/release/strata

work=$(mktemp -d /var/tmp/strata-compare.XXXXXX)
mkdir -p "$results"
pids=()

# Unmounts whatever is still mounted under DIR (deepest first) and deletes it.
wipe() {
  { findmnt -rn -o TARGET | grep -F "$1/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$1"
}
cleanup() {
  [[ -n "${dockerd_pid:-}" ]] && { kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true; }
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wipe "$work"
}
trap cleanup EXIT

# ---- registry on a free port
while :; do
  port=$(shuf -i 20000-60000 -n 1)
  ss -Hltn "sport = :$port" | grep -q . || break
done
registry=127.0.0.1:$port
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $registry
YAML
REGISTRY_HTTP_SECRET=bench docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS -o /dev/null "http://$registry/v2/" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "http://$registry/v2/" || { cat "$work/registry.log" >&2; exit 1; }

# ---- busybox base image, laid out like Docker Hub's (every applet a hard link), reproducible timestamps
rootfs=$work/busybox-rootfs
mkdir -p "$rootfs"/{bin,etc,root,tmp,proc,sys,dev,home,usr/sbin,var/www}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ $applet == busybox ]] || ln -f "$rootfs/bin/busybox" "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"
find "$rootfs" -exec touch -h -d @0 {} +
layout=$work/busybox-layout
umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --image "$layout:latest" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs" && cp -a "$rootfs" "$work/bundle/rootfs"
umoci repack --image "$layout:latest" "$work/bundle"
umoci config --image "$layout:latest" --os linux --architecture amd64 --config.cmd sh \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umoci gc --layout "$layout"
skopeo copy -q --dest-tls-verify=false "oci:$layout:latest" "docker://$registry/busybox:latest"
base=$registry/busybox:latest

# ---- build contexts
app=$work/ctx-app
mkdir -p "$app"
for i in $(seq 1 20); do head -c 4096 /dev/urandom | base64 >"$app/f$i.txt"; done
echo 0 >"$app/changing.txt"
cat >"$app/Dockerfile" <<EOF
FROM $base
RUN echo hello > /hello && mkdir -p /app
COPY . /app
RUN ls /app | wc -l > /count
EOF
multi=$work/ctx-multi
mkdir -p "$multi"
cat >"$multi/Dockerfile" <<EOF
FROM $base AS a
RUN i=0; while [ \$i -lt 150000 ]; do i=\$((i+1)); done; echo \$i > /a
FROM $base AS b
RUN i=0; while [ \$i -lt 150001 ]; do i=\$((i+1)); done; echo \$i > /b
FROM $base
COPY --from=a /a /a
COPY --from=b /b /b
EOF

# ---- per-tool configuration
printf '[registry."%s"]\nhttp = true\n' "$registry" >"$work/strata.toml"
cat >"$work/containers.conf" <<EOF
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
EOF
cat >"$work/registries.conf" <<EOF
unqualified-search-registries = []
[[registry]]
location = "$registry"
insecure = true
EOF
printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' "$work/unused-run" "$work/unused-root" \
  >"$work/storage.conf"
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_REGISTRIES_CONF=$work/registries.conf
export CONTAINERS_STORAGE_CONF=$work/storage.conf

# build_cmd TOOL : the command line that builds (the context and flags are appended)
build_cmd() {
  local st=$work/store-$1
  case $1 in
    strata) echo "$strata --root $st --config $work/strata.toml build --progress quiet" ;;
    buildah) echo "buildah --root $st/root --runroot $st/run bud --layers -q --network host" ;;
    podman) echo "podman --root $st/root --runroot $st/run --tmpdir $st/tmp build -q --network host" ;;
    docker) echo "/usr/bin/docker -H unix://$work/docker/docker.sock build -q --network host" ;;
  esac
}
# reset_cmd TOOL : the command that empties the tool's store and cache
reset_cmd() {
  case $1 in
    docker) echo "/usr/bin/docker -H unix://$work/docker/docker.sock system prune -af >/dev/null" ;;
    *) echo "wipe $work/store-$1" ;;
  esac
}
# hyperfine runs --prepare through bash (--shell bash): the store reset needs wipe() there.
export -f wipe

if [[ " ${tools[*]} " == *" docker "* ]]; then
  mkdir -p "$work/docker"
  echo '{ "features": { "buildkit": true } }' >"$work/docker/daemon.json"
  /usr/sbin/dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" --pidfile "$work/docker/pid" \
    -H "unix://$work/docker/docker.sock" --insecure-registry "$registry" --config-file "$work/docker/daemon.json" \
    --storage-driver overlay2 --bridge=none --iptables=false --ip-masq=false >"$work/docker/log" 2>&1 &
  dockerd_pid=$!
  export DOCKER_BUILDKIT=1
  for _ in $(seq 300); do /usr/bin/docker -H "unix://$work/docker/docker.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  /usr/bin/docker -H "unix://$work/docker/docker.sock" version >/dev/null || { tail -n 20 "$work/docker/log" >&2; exit 1; }
fi

# ---- one plain build per tool first, so a broken tool shows its error rather than a hyperfine failure
for t in "${tools[@]}"; do
  eval "$(reset_cmd "$t")"
  if ! eval "$(build_cmd "$t") -t bench/app $app" >"$results/$t-smoke.log" 2>&1; then
    echo "compare.sh: $t cannot build:" >&2
    tail -n 20 "$results/$t-smoke.log" >&2
    exit 1
  fi
done

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "# compare.sh $(date -u +%FT%TZ), $runs runs, $(nproc) cpus, kernel $(uname -r)"
  echo "strata $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty), $(buildah --version), $(podman --version)"
  has_docker && [[ " ${tools[*]} " == *" docker "* ]] && /usr/bin/docker --version
  echo
} >"$results/summary.md"

# scenario NAME HYPERFINE-OPTIONS -- : one hyperfine run over every tool; per-tool --prepare come from prepare_for
scenario() {
  local name=$1 args=() t
  shift
  for t in "${tools[@]}"; do
    args+=(-n "$t" --prepare "$(prepare_for "$name" "$t")" "$(command_for "$name" "$t")")
  done
  echo "== $name (load before: $(load))"
  echo "$name load-before $(load)" >>"$results/load.txt"
  hyperfine --shell bash --style basic --runs "$runs" "$@" --export-json "$results/$name.json" \
    --export-markdown "$results/$name.md" "${args[@]}" | tee "$results/$name.txt"
  echo "$name load-after $(load)" >>"$results/load.txt"
}
prepare_for() {
  case $1 in
    cold) reset_cmd "$2" ;;
    edit) echo "date +%s%N > $app/changing.txt" ;;
    *) echo true ;;
  esac
}
command_for() {
  case $1 in
    multistage)
      local jobs=""
      [[ $2 == buildah || $2 == podman ]] && jobs="--jobs 2"
      echo "$(build_cmd "$2") --no-cache $jobs -t bench/multi $multi"
      ;;
    *) echo "$(build_cmd "$2") -t bench/app $app" ;;
  esac
}

scenario cold
scenario cached --warmup 1
scenario edit --warmup 1
scenario multistage --warmup 1

# ---- table of medians and ratios
{
  printf '| scenario |'
  for t in "${tools[@]}"; do printf ' %s median s |' "$t"; done
  for t in "${tools[@]:1}"; do printf ' strata/%s |' "$t"; done
  printf '\n|---|'
  for _ in "${tools[@]}" "${tools[@]:1}"; do printf -- '---|'; done
  printf '\n'
  for sc in cold cached edit multistage; do
    printf '| %s |' "$sc"
    declare -A median=()
    for t in "${tools[@]}"; do
      median[$t]=$(jq -r --arg t "$t" '.results[] | select(.command == $t) | .median' "$results/$sc.json")
      printf ' %.3f |' "${median[$t]}"
    done
    for t in "${tools[@]:1}"; do
      printf ' %.2f |' "$(echo "${median[${tools[0]}]} / ${median[$t]}" | bc -l)"
    done
    printf '\n'
    unset median
  done
  echo
  echo "load averages (1, 5, 15 min) before and after each scenario:"
  sed 's/^/    /' "$results/load.txt"
} | tee -a "$results/summary.md"
echo "raw results: $results"
