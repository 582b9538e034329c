#!/usr/bin/env bash
# Writes an OCI image layout of random (incompressible) layers for the registry benchmark.
# Usage: bench/make-layout.sh DIR [TOTAL_MB] [LAYERS]   (default: 500 MB in 5 layers)
set -euo pipefail
dir=$1
total_mb=${2:-500}
layers=${3:-5}
mkdir -p "$dir/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"

# Stores stdin as a blob and prints "digest size".
put_blob() {
  local tmp="$dir/blobs/tmp.$$"
  cat >"$tmp"
  local hex size
  hex=$(sha256sum "$tmp" | cut -d' ' -f1)
  size=$(stat -c %s "$tmp")
  mv "$tmp" "$dir/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

layer_json=()
diff_ids=()
per_layer=$((total_mb / layers))
for i in $(seq 1 "$layers"); do
  read -r digest size < <(head -c "$((per_layer * 1024 * 1024))" /dev/urandom | put_blob)
  layer_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$digest\",\"size\":$size}")
  diff_ids+=("\"$digest\"")
done
join() { local IFS=,; echo "$*"; }
config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(join "${diff_ids[@]}")]}}"
read -r config_digest config_size < <(printf '%s' "$config" | put_blob)
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\"layers\":[$(join "${layer_json[@]}")]}"
read -r manifest_digest manifest_size < <(printf '%s' "$manifest" | put_blob)
cat >"$dir/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$manifest_digest","size":$manifest_size,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}
JSON
echo "$manifest_digest"
