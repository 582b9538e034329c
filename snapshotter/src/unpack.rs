//! Unpacks an image's layers into committed snapshots named by their OCI chain IDs, as containerd does: a
//! layer's snapshot depends only on it and the layers below, so images sharing a base share its snapshots.
//!
//! Each missing layer is applied into a fresh active snapshot under a key unique to this process and call, then
//! committed under its chain ID. A failed apply removes that active snapshot, so nothing half-applied is ever
//! committed; when another process commits the same chain ID first, ours is dropped and theirs is used.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::apply::apply_blob;
use crate::metadata::{MetadataStore, RefTarget, SnapshotKind};
use crate::snapshot::Snapshotter;

/// The chain ID of each layer, base first, from the layers' diffIDs (the image config's `rootfs.diff_ids`).
pub fn chain_ids<'a>(diff_ids: impl IntoIterator<Item = &'a Digest>) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::new();
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

/// The snapshot key of the top layer of `layers` (`(blob, diffID)` pairs, base first); `None` with no layers.
pub fn snapshot_key_of(layers: &[(Digest, Digest)]) -> Option<String> {
    chain_ids(layers.iter().map(|(_, diff_id)| diff_id)).last().map(Digest::to_string)
}

/// Unpacks `layers` (`(blob, diffID)` pairs, base first, blobs in `content`) into committed snapshots and
/// returns the top one's key. Layers already unpacked are reused.
pub fn unpack(content: &ContentStore, snapshotter: &dyn Snapshotter, layers: &[(Digest, Digest)]) -> Result<String> {
    let chain = chain_ids(layers.iter().map(|(_, diff_id)| diff_id));
    let mut parent: Option<String> = None;
    for ((blob, diff_id), chain_id) in layers.iter().zip(&chain) {
        let name = chain_id.to_string();
        match snapshotter.stat(&name)? {
            Some(record) if record.kind == SnapshotKind::Committed => {}
            Some(record) => {
                return Err(Error::SnapshotState {
                    key: name,
                    reason: format!(
                        "is {}, but a layer's chain ID must name a committed snapshot",
                        record.kind.as_str()
                    ),
                });
            }
            None => unpack_layer(content, snapshotter, blob, diff_id, &name, parent.as_deref())?,
        }
        parent = Some(name);
    }
    parent.ok_or_else(|| Error::InvalidArgument("cannot unpack an image without layers".into()))
}

/// Unpacks `layers` as [`unpack`] does, for `owner`: its GC references to every layer's snapshot are recorded
/// first, before the snapshots exist, so a concurrent prune never removes a committed layer before the next
/// layer's snapshot (which keeps its parents alive) is prepared on it.
pub fn unpack_referenced(
    metadata: &MetadataStore,
    owner: &str,
    content: &ContentStore,
    snapshotter: &dyn Snapshotter,
    layers: &[(Digest, Digest)],
) -> Result<String> {
    for chain_id in chain_ids(layers.iter().map(|(_, diff_id)| diff_id)) {
        metadata.add_ref(owner, &RefTarget::Snapshot(chain_id.to_string()))?;
    }
    unpack(content, snapshotter, layers)
}

/// Applies `blob` on `parent` and commits it as `name`, leaving no snapshot behind if anything fails.
fn unpack_layer(
    content: &ContentStore,
    snapshotter: &dyn Snapshotter,
    blob: &Digest,
    diff_id: &Digest,
    name: &str,
    parent: Option<&str>,
) -> Result<()> {
    let key = unique_key(name);
    snapshotter.prepare(&key, parent)?;
    let applied = (|| {
        let applied = apply_blob(content, blob, &snapshotter.layout(&key)?)?;
        if applied.diff_id != *diff_id {
            return Err(Error::DigestMismatch {
                expected: diff_id.to_string(),
                actual: format!("{} (the uncompressed layer {blob})", applied.diff_id),
            });
        }
        snapshotter.commit(name, &key)
    })();
    match applied {
        Ok(()) => Ok(()),
        // Another process unpacked the same layer first: its snapshot is as good as ours.
        Err(Error::SnapshotExists(existing)) if existing == name => discard(snapshotter, &key, Ok(())),
        Err(e) => discard(snapshotter, &key, Err(e)),
    }
}

/// Removes the active snapshot `key` and returns `outcome`; a failed removal is logged (GC's `--all` sweeps
/// active snapshots) so it never hides the error that caused it.
fn discard(snapshotter: &dyn Snapshotter, key: &str, outcome: Result<()>) -> Result<()> {
    if let Err(e) = snapshotter.remove(key) {
        tracing::warn!("removing the unfinished snapshot {key}: {e}");
    }
    outcome
}

/// An active snapshot key no other process or call uses at the same time.
fn unique_key(name: &str) -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    format!("unpack-{}-{call}-{name}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        Digest::of(&[byte])
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let (a, b, c) = (digest(1), digest(2), digest(3));
        let ab = Digest::of(format!("{a} {b}").as_bytes());
        let abc = Digest::of(format!("{ab} {c}").as_bytes());
        assert_eq!(chain_ids([&a, &b, &c]), vec![a.clone(), ab, abc.clone()]);
        let layers = [(digest(9), a), (digest(8), b), (digest(7), c)];
        assert_eq!(snapshot_key_of(&layers), Some(abc.to_string()));
        assert_eq!(snapshot_key_of(&[]), None);
    }

    #[test]
    fn unique_keys_differ_per_call() {
        assert_ne!(unique_key("x"), unique_key("x"));
    }
}
