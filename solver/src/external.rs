//! External caches (`--cache-from`): when a key has no local record, a [`CacheSource`] may know the layers that
//! rebuild its result. Only the blobs the store lacks are fetched, each verified against its digest, then unpacked
//! into snapshots named by chain ID and recorded locally, so the step counts as cached. Anything that fails to
//! fetch or verify is never trusted: the step simply runs.

use strata_snapshotter::metadata::{RefTarget, cache_owner};
use strata_snapshotter::{ContentStore, Digest, LayerDescriptor, MetadataStore, chain_ids, unpack_referenced};

use crate::Inner;
use crate::cache;
use crate::error::{Result, StoreContext};

/// A cache imported from elsewhere (a directory or a registry), consulted when the local cache misses.
pub trait CacheSource: Send + Sync {
    /// The layers, base first, that rebuild the result of `key` from the empty tree (empty: the empty tree);
    /// `None` when this cache has no record of `key`.
    fn layers(&self, key: &str) -> Option<Vec<LayerDescriptor>>;
    /// Fetches `layer`'s blob into `content`, verifying its digest and size.
    fn fetch(&self, layer: &LayerDescriptor, content: &ContentStore) -> std::result::Result<(), String>;
}

/// What an external cache gave for one key.
pub(crate) enum Imported {
    /// No source has a record of the key.
    Miss,
    /// The result: its snapshot, `None` for the empty tree.
    Hit(Option<String>),
    /// A source has a record but its layers could not be used; the warning says why.
    Unusable(String),
}

/// The metadata key under which an imported snapshot remembers the layer it was unpacked from.
fn layer_record_key(snapshot: &str) -> String {
    format!("imported-layer/{snapshot}")
}

/// Looks `key` up in the external caches and, on a hit, fetches, unpacks and records it locally.
pub(crate) fn lookup(inner: &Inner, key: &str) -> Result<Imported> {
    let Some((source, layers)) = inner.cache_sources.iter().find_map(|s| s.layers(key).map(|l| (s, l))) else {
        return Ok(Imported::Miss);
    };
    for layer in layers.iter().filter(|l| !inner.content.exists(&l.digest)) {
        if let Err(reason) = source.fetch(layer, &inner.content) {
            return Ok(Imported::Unusable(format!("cache layer {} not used: {reason}", layer.digest)));
        }
    }
    let pairs: Vec<(Digest, Digest)> = layers.iter().map(|l| (l.digest.clone(), l.diff_id.clone())).collect();
    // `cache::record` keeps only the top snapshot referenced (which keeps its parents).
    let owner = cache_owner(key);
    let snapshot = if pairs.is_empty() {
        None
    } else {
        match unpack_referenced(&inner.metadata, &owner, &inner.content, inner.snapshotter.as_ref(), &pairs) {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                inner.metadata.remove_refs(&owner).store_context(|| format!("dropping the refs of {key}"))?;
                return Ok(Imported::Unusable(format!("cache layers not used: {e}")));
            }
        }
    };
    cache::record(&inner.metadata, key, snapshot.as_deref())?;
    let chain = chain_ids(pairs.iter().map(|(_, diff_id)| diff_id));
    for (layer, chain_id) in layers.iter().zip(chain) {
        let json = serde_json::to_value(layer).expect("a layer descriptor serialises");
        let record = layer_record_key(&chain_id.to_string());
        inner.metadata.put_cache(&record, &json).store_context(|| format!("writing {record}"))?;
        // The blob lives as long as the record that names it.
        let blob = RefTarget::Blob(layer.digest.clone());
        inner
            .metadata
            .add_ref(&cache_owner(&record), &blob)
            .store_context(|| format!("referencing {}", layer.digest))?;
    }
    Ok(Imported::Hit(snapshot))
}

/// The layer the snapshot `snapshot` was unpacked from by an external cache, if it was and its blob is still
/// stored: the exporter reuses it rather than diffing the snapshot again, so the image keeps the cache's blobs.
pub fn imported_layer(content: &ContentStore, metadata: &MetadataStore, snapshot: &str) -> Option<LayerDescriptor> {
    let record = metadata.cache(&layer_record_key(snapshot)).ok()??;
    serde_json::from_value::<LayerDescriptor>(record.result).ok().filter(|l| content.exists(&l.digest))
}
