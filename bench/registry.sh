#!/usr/bin/env bash
# Pull and push of a ~500 MB multi-layer image against a local distribution registry: strata vs skopeo in the
# same run, alternating, each on fresh state. Prints each time, the medians and strata/skopeo ratios.
# Usage: bench/registry.sh [RUNS] [TOTAL_MB] [LAYERS]   (builds strata in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
total_mb=${2:-500}
layers=${3:-5}
cargo build --release --quiet --bin strata
strata=$PWD/target/release/strata

work=$(mktemp -d /var/tmp/strata-bench.XXXXXX)
registry_pids=()
cleanup() {
  for pid in "${registry_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "generating a ${total_mb} MB image in ${layers} random layers..."
bench/make-layout.sh "$work/layout" "$total_mb" "$layers" >/dev/null

# Starts a registry with empty storage under $work/$1 and sets $registry_addr (no subshell: its pid must be kept).
start_registry() {
  local name=$1 port
  port=$(shuf -i 20000-60000 -n 1)
  cat >"$work/$name.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/$name
http:
  addr: 127.0.0.1:$port
YAML
  REGISTRY_HTTP_SECRET=bench docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
  registry_pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  printf '[registry."127.0.0.1:%s"]\nhttp = true\n' "$port" >>"$work/strata.toml"
  registry_addr=127.0.0.1:$port
}
export STRATA_CONFIG=$work/strata.toml
start_registry source
addr=$registry_addr
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:latest" "docker://$addr/seed:latest"

# Seconds (3 decimals) a command takes; its stdout goes to $work/out. A failure stops the benchmark.
timed() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$work/out"
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l | xargs printf '%.3f'
}
# A fresh HOME per skopeo pull: no state carried over between runs.
fresh_home() { rm -rf "$work/home" && mkdir -p "$work/home"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -a strata_pull skopeo_pull strata_push skopeo_push
export HOME=$work/home
for i in $(seq 1 "$runs"); do
  rm -rf "$work/root" "$work/pulled"
  t=$(timed "$strata" --root "$work/root" pull "$addr/seed:latest") && strata_pull+=("$t")
  manifest=$(cut -d' ' -f2 "$work/out")
  fresh_home
  t=$(timed skopeo copy --quiet --src-tls-verify=false "docker://$addr/seed:latest" "oci:$work/pulled:latest")
  skopeo_pull+=("$t")
  # Each push goes to an empty registry, so neither tool can skip or mount a blob.
  start_registry "strata-push-$i"
  t=$(timed "$strata" --root "$work/root" push --digest "$manifest" "$registry_addr/image:latest") && strata_push+=("$t")
  start_registry "skopeo-push-$i"
  t=$(timed skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:latest" "docker://$registry_addr/image:latest")
  skopeo_push+=("$t")
  echo "run $i: pull strata ${strata_pull[-1]} s, skopeo ${skopeo_pull[-1]} s; push strata ${strata_push[-1]} s, skopeo ${skopeo_push[-1]} s"
done

report() {
  local what=$1 s k
  s=$(median "${@:2:$runs}")
  k=$(median "${@:$((runs + 2))}")
  printf '%s: strata median %.3f s, skopeo median %.3f s, ratio %.2f\n' "$what" "$s" "$k" "$(echo "$s / $k" | bc -l)"
}
report pull "${strata_pull[@]}" "${skopeo_pull[@]}"
report push "${strata_push[@]}" "${skopeo_push[@]}"
