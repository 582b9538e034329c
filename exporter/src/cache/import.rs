//! Reading a cache for the solver: the manifest and its config only, from an OCI layout directory or a registry;
//! layer blobs are fetched later, one by one, only for the keys the build hits, each verified against its digest.
//! An image pushed with an inline cache works too: its records index the image's own layers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageManifest;
use strata_registry::{Reference, RegistryClient, layout_blob, layout_manifest};
use strata_snapshotter::{ContentStore, Digest, LayerDescriptor};
use strata_solver::CacheSource;

use super::{CACHE_CONFIG_MEDIA_TYPE, CacheConfig, CacheLayer, INLINE_FIELD, InlineCache, Record};
use crate::oci_layout::store_digest;
use crate::{Error, Result, store_error};

/// A cache read from a layout or registry: the records, and where their blobs are.
#[derive(Debug)]
pub struct ImportedCache {
    records: HashMap<String, Vec<LayerDescriptor>>,
    origin: Origin,
}

/// Where an imported cache's blobs come from.
#[derive(Debug)]
enum Origin {
    /// An OCI layout directory.
    Local(PathBuf),
    /// A registry repository.
    Registry { client: RegistryClient, reference: Reference },
}

impl ImportedCache {
    /// Reads the cache tagged `tag` in the OCI layout at `dir` (its manifest and config go into `content`).
    pub fn from_layout(dir: &Path, tag: &str, content: &ContentStore) -> Result<Self> {
        let (_, manifest) = layout_manifest(dir, Some(tag), content)
            .map_err(registry_error(|| format!("reading the cache in {}", dir.display())))?;
        let records = records(&manifest, content)?;
        Ok(Self { records, origin: Origin::Local(dir.to_owned()) })
    }

    /// Reads the cache (or the inline cache of the image) at `reference`: its manifest and config only.
    pub async fn from_registry(client: RegistryClient, reference: Reference, content: &ContentStore) -> Result<Self> {
        let (_, manifest) = client
            .pull_manifest(&reference, content)
            .await
            .map_err(registry_error(|| format!("reading the cache {reference}")))?;
        let records = records(&manifest, content)?;
        Ok(Self { records, origin: Origin::Registry { client, reference } })
    }

    /// Whether the cache has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl CacheSource for ImportedCache {
    fn layers(&self, key: &str) -> Option<Vec<LayerDescriptor>> {
        self.records.get(key).cloned()
    }

    fn fetch(&self, layer: &LayerDescriptor, content: &ContentStore) -> std::result::Result<(), String> {
        match &self.origin {
            Origin::Local(dir) => layout_blob(dir, content, &layer.digest, layer.size),
            // The solver calls this inside `block_in_place` on its runtime.
            Origin::Registry { client, reference } => tokio::runtime::Handle::current().block_on(client.pull_blob(
                reference,
                content,
                &layer.digest,
                layer.size,
            )),
        }
        .map_err(|e| e.to_string())
    }
}

/// The records of a cache manifest, or of an image's inline cache (none when the image has no inline cache).
fn records(manifest: &ImageManifest, content: &ContentStore) -> Result<HashMap<String, Vec<LayerDescriptor>>> {
    let config_digest = store_digest(manifest.config())?;
    let bytes = content.read_bytes(&config_digest).map_err(store_error(|| format!("reading {config_digest}")))?;
    let malformed = |reason: String| Error::Oci { context: format!("cache config {config_digest}"), reason };
    if manifest.config().media_type().to_string() == CACHE_CONFIG_MEDIA_TYPE {
        let config: CacheConfig = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        return resolve(&config.records, &config.layers).map_err(malformed);
    }
    let image: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    let Some(inline) = image.get(INLINE_FIELD) else {
        return Ok(HashMap::new());
    };
    let inline: InlineCache = serde_json::from_value(inline.clone()).map_err(|e| malformed(e.to_string()))?;
    let diff_ids: Vec<Digest> = serde_json::from_value(image["rootfs"]["diff_ids"].clone())
        .map_err(|e| malformed(format!("rootfs.diff_ids: {e}")))?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(malformed("the image's layers and diff IDs differ in number".into()));
    }
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| {
            Ok(CacheLayer {
                media_type: layer.media_type().to_string(),
                digest: store_digest(layer)?,
                size: layer.size(),
                diff_id,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    resolve(&inline.records, &layers).map_err(malformed)
}

/// Each record's key with its layers; an index past the layers is refused.
fn resolve(
    records: &[Record],
    layers: &[CacheLayer],
) -> std::result::Result<HashMap<String, Vec<LayerDescriptor>>, String> {
    records
        .iter()
        .map(|record| {
            let resolved = record
                .layers
                .iter()
                .map(|&i| layers.get(i).map(LayerDescriptor::from))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("record {} names a layer past the {} there are", record.key, layers.len()))?;
            Ok((record.key.clone(), resolved))
        })
        .collect()
}

fn registry_error(context: impl FnOnce() -> String) -> impl FnOnce(strata_registry::Error) -> Error {
    move |source| Error::Registry { context: context(), source: Box::new(source) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(byte: u8) -> CacheLayer {
        let media_type = "application/vnd.oci.image.layer.v1.tar+gzip".to_owned();
        CacheLayer { media_type, digest: Digest::of(&[byte]), size: 1, diff_id: Digest::of(&[byte, byte]) }
    }

    #[test]
    fn records_resolve_to_their_layers_in_order() {
        let layers = [layer(1), layer(2)];
        let records = [Record { key: "a".into(), layers: vec![0, 1] }, Record { key: "empty".into(), layers: vec![] }];
        let resolved = resolve(&records, &layers).unwrap();
        let digests: Vec<Digest> = resolved["a"].iter().map(|l| l.digest.clone()).collect();
        assert_eq!(digests, vec![Digest::of(&[1]), Digest::of(&[2])]);
        assert!(resolved["empty"].is_empty());
        let bad = [Record { key: "b".into(), layers: vec![2] }];
        assert!(resolve(&bad, &layers).unwrap_err().contains("record b names a layer past the 2"));
    }

    #[test]
    fn the_cache_config_round_trips_with_oci_names() {
        let config = CacheConfig { layers: vec![layer(1)], records: vec![Record { key: "k".into(), layers: vec![0] }] };
        let json = serde_json::to_value(&config).unwrap();
        assert!(json["layers"][0]["diffID"].is_string() && json["layers"][0]["mediaType"].is_string(), "{json}");
        assert_eq!(serde_json::from_value::<CacheConfig>(json).unwrap(), config);
    }
}
