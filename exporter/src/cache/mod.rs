//! Build caches to share between machines (`--cache-to` / `--cache-from`), as an ordinary OCI artifact.
//!
//! A cache is an OCI image manifest whose config (`application/vnd.strata.cache.config.v1+json`) is
//! `{"layers": [{mediaType, digest, size, diffID}...], "records": [{"key": KEY, "layers": [indices...]}]}`
//! and whose layers are every blob the records name: a record says that applying those layers, in order, to
//! the empty tree rebuilds the result of the solver's cache key `KEY` (which never includes a secret's value).
//! The inline form (`type=inline`) puts only the records under the image config's `strata.cache.v1` field, their
//! indices pointing into the image's own layers. [`export`] makes the records; [`import`] reads them back for the
//! solver.

mod export;
mod import;

use serde::{Deserialize, Serialize};
use strata_snapshotter::{Digest, LayerDescriptor};

pub(crate) use export::inline_records;
pub use export::{CacheMode, cache_image};
pub use import::ImportedCache;

/// The media type of a cache manifest's config.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.strata.cache.config.v1+json";
/// The image config field holding an inline cache's records.
pub const INLINE_FIELD: &str = "strata.cache.v1";

/// A cache manifest's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct CacheConfig {
    layers: Vec<CacheLayer>,
    records: Vec<Record>,
}

/// One layer of a cache: a descriptor with the diffID that unpacking checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CacheLayer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(rename = "diffID")]
    diff_id: Digest,
}

/// One cache key and the layers (indices, base first) that rebuild its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    key: String,
    layers: Vec<usize>,
}

/// The records of an inline cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct InlineCache {
    records: Vec<Record>,
}

impl From<&LayerDescriptor> for CacheLayer {
    fn from(layer: &LayerDescriptor) -> Self {
        Self {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            diff_id: layer.diff_id.clone(),
        }
    }
}

impl From<&CacheLayer> for LayerDescriptor {
    fn from(layer: &CacheLayer) -> Self {
        Self {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            diff_id: layer.diff_id.clone(),
        }
    }
}
