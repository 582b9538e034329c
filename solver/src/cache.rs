//! Cache keys and records. A key covers the node's digest, its inputs' keys and, for context sources and
//! copies from them, the checksum of exactly the files selected; a record maps a key to the committed
//! snapshot that the work produced.

use strata_snapshotter::metadata::{RefTarget, cache_owner};
use strata_snapshotter::{MetadataStore, SnapshotKind};

use crate::error::{Result, StoreContext};

/// Builds one node's cache key.
pub(crate) struct KeyBuilder(blake3::Hasher);

impl KeyBuilder {
    /// Starts from the node's digest.
    pub(crate) fn new(digest: &[u8; 32]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"strata-cache-v1\0");
        hasher.update(digest);
        Self(hasher)
    }

    /// Adds one input's key, or a checksum standing in for it.
    pub(crate) fn input(mut self, part: &[u8]) -> Self {
        self.0.update(&(part.len() as u64).to_le_bytes());
        self.0.update(part);
        self
    }

    /// The key as text: `blake3:<hex>`.
    pub(crate) fn finish(self) -> String {
        format!("blake3:{}", self.0.finalize().to_hex())
    }
}

/// The recorded result of `key`: `Some(None)` for an empty tree, `Some(Some(snapshot))` for a committed
/// snapshot that still exists, `None` when there is nothing usable.
pub(crate) fn lookup(metadata: &MetadataStore, key: &str) -> Result<Option<Option<String>>> {
    let Some(record) = metadata.cache(key).store_context(|| format!("reading cache record {key}"))? else {
        return Ok(None);
    };
    let snapshot = match record.result.get("snapshot") {
        Some(serde_json::Value::String(snapshot)) => snapshot.clone(),
        Some(serde_json::Value::Null) => return Ok(Some(None)),
        _ => return Ok(None),
    };
    // A pruned snapshot leaves a record that can no longer be used.
    let live = metadata
        .snapshot(&snapshot)
        .store_context(|| format!("reading snapshot {snapshot}"))?
        .is_some_and(|s| s.kind == SnapshotKind::Committed);
    if !live {
        return Ok(None);
    }
    metadata.touch_cache(key).store_context(|| format!("touching cache record {key}"))?;
    Ok(Some(Some(snapshot)))
}

/// Records that `key` produced `snapshot` (`None`: the empty tree), keeping the snapshot alive for GC.
pub(crate) fn record(metadata: &MetadataStore, key: &str, snapshot: Option<&str>) -> Result<()> {
    let owner = cache_owner(key);
    metadata.remove_refs(&owner).store_context(|| format!("replacing the refs of cache record {key}"))?;
    if let Some(snapshot) = snapshot {
        metadata
            .add_ref(&owner, &RefTarget::Snapshot(snapshot.to_owned()))
            .store_context(|| format!("referencing {snapshot} from cache record {key}"))?;
    }
    metadata
        .put_cache(key, &serde_json::json!({ "snapshot": snapshot }))
        .store_context(|| format!("writing cache record {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_digest_and_every_input() {
        let key = |digest: u8, inputs: &[&[u8]]| {
            inputs.iter().fold(KeyBuilder::new(&[digest; 32]), |k, i| k.input(i)).finish()
        };
        assert_eq!(key(1, &[b"a"]), key(1, &[b"a"]));
        assert_ne!(key(1, &[b"a"]), key(2, &[b"a"]));
        assert_ne!(key(1, &[b"a"]), key(1, &[b"b"]));
        assert_ne!(key(1, &[b"ab"]), key(1, &[b"a", b"b"]));
    }

    #[test]
    fn records_of_missing_snapshots_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(lookup(&metadata, "k").unwrap(), None);
        record(&metadata, "empty", None).unwrap();
        assert_eq!(lookup(&metadata, "empty").unwrap(), Some(None));
        record(&metadata, "gone", Some("snap")).unwrap();
        assert_eq!(lookup(&metadata, "gone").unwrap(), None);
    }
}
