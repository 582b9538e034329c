//! Garbage collection and disk use, as `docker buildx prune` and `du` present them.
//!
//! Live data is what images and references reach: an image's manifest and every blob its manifests and
//! indexes name, every referenced blob and snapshot, the parents of live snapshots, and snapshots in use
//! (active or view). Pruning deletes build cache records (oldest use first), then sweeps what nothing reaches.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{IoContext, Result, show};
use crate::metadata::{CacheRecord, MetadataStore, RefTarget, SnapshotKind, SnapshotRecord, cache_owner};
use crate::snapshot::Snapshotter;
use crate::snapshot::copy::remove_any;

/// Manifests and indexes bigger than this are not parsed for descriptors (real ones are a few KiB).
const MAX_MANIFEST: u64 = 4 << 20;

/// What to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    all: bool,
    keep_storage: Option<u64>,
    until: Option<Duration>,
    grace: Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self { all: false, keep_storage: None, until: None, grace: Duration::from_secs(600) }
    }
}

impl PruneOptions {
    /// Prunes every cache record, keeps snapshots in use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also removes active and view snapshots (abandoned by killed builds) matching `until`.
    pub fn all(mut self, all: bool) -> Self {
        self.all = all;
        self
    }

    /// Stops once blobs and snapshots use at most this many bytes.
    pub fn keep_storage(mut self, bytes: u64) -> Self {
        self.keep_storage = Some(bytes);
        self
    }

    /// Only prunes what was last used longer ago than this.
    pub fn until(mut self, age: Duration) -> Self {
        self.until = Some(age);
        self
    }

    /// Leaves blobs younger than this alone (default 10 minutes): another process may have just written
    /// one and not yet recorded the image that references it.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    fn matches(&self, last_used: SystemTime) -> bool {
        self.until.is_none_or(|age| last_used.elapsed().is_ok_and(|elapsed| elapsed >= age))
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Cache keys deleted.
    pub cache_records: Vec<String>,
    /// Snapshot keys deleted.
    pub snapshots: Vec<String>,
    /// Blobs deleted.
    pub blobs: Vec<Digest>,
    /// Bytes freed (blob sizes plus recorded snapshot sizes).
    pub reclaimed: u64,
}

/// Disk use of one root, by kind of record.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Each image with the bytes of the blobs it reaches.
    pub images: Vec<(String, u64)>,
    /// Each cache record with the bytes it references directly and its last use.
    pub cache: Vec<(CacheRecord, u64)>,
    /// Each snapshot with its size (measured now for active ones, at commit for committed ones).
    pub snapshots: Vec<(SnapshotRecord, u64)>,
    /// Every blob with its size and whether something live reaches it.
    pub blobs: Vec<(Digest, u64, bool)>,
    /// Bytes a `prune --all` with no filters would free.
    pub reclaimable: u64,
}

impl DiskUsage {
    /// Bytes used by blobs and snapshots together.
    pub fn total(&self) -> u64 {
        self.blobs.iter().map(|b| b.1).sum::<u64>() + self.snapshots.iter().map(|s| s.1).sum::<u64>()
    }
}

/// Prunes the root at `root` as `options` say.
pub fn prune(
    root: &Path,
    meta: &MetadataStore,
    store: &ContentStore,
    snapshotter: &dyn Snapshotter,
    options: &PruneOptions,
) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let mut candidates: Vec<CacheRecord> =
        meta.caches()?.into_iter().filter(|c| options.matches(c.last_used)).collect();
    // `caches` lists least recently used first; pop from the end of the reversed list to keep that order.
    candidates.reverse();
    if options.all {
        for snapshot in meta.snapshots()?.into_iter().rev() {
            if snapshot.kind != SnapshotKind::Committed && options.matches(snapshot.last_used) {
                snapshotter.remove(&snapshot.key)?;
                report.reclaimed += snapshot.size;
                report.snapshots.push(snapshot.key);
            }
        }
    }
    loop {
        if let Some(keep) = options.keep_storage
            && disk_usage(meta, store, snapshotter)?.total() <= keep
        {
            break;
        }
        let Some(record) = candidates.pop() else {
            break;
        };
        meta.delete_cache(&record.key)?;
        report.cache_records.push(record.key);
        // With a size target, sweep after every record so pruning stops as soon as the target is met.
        if options.keep_storage.is_some() {
            sweep(meta, store, snapshotter, options, &mut report)?;
        }
    }
    sweep(meta, store, snapshotter, options, &mut report)?;
    remove_orphan_dirs(root, meta)?;
    Ok(report)
}

/// Measures the root.
pub fn disk_usage(meta: &MetadataStore, store: &ContentStore, snapshotter: &dyn Snapshotter) -> Result<DiskUsage> {
    let blobs = store.walk()?;
    let sizes: BTreeMap<&Digest, u64> = blobs.iter().map(|(d, s)| (d, *s)).collect();
    let (live_blobs, _) = mark(meta, store)?;
    let mut usage = DiskUsage::default();
    for image in meta.images()? {
        let reached = reachable(store, [image.manifest.clone()]);
        usage.images.push((image.name, reached.iter().filter_map(|d| sizes.get(d)).sum()));
    }
    let refs = meta.refs()?;
    let snapshots = meta.snapshots()?;
    for record in meta.caches()? {
        let owner = cache_owner(&record.key);
        let size = refs
            .iter()
            .filter(|(o, _)| *o == owner)
            .map(|(_, target)| match target {
                RefTarget::Blob(d) => sizes.get(d).copied().unwrap_or(0),
                RefTarget::Snapshot(key) => snapshots.iter().find(|s| s.key == *key).map_or(0, |s| s.size),
            })
            .sum();
        usage.cache.push((record, size));
    }
    for snapshot in snapshots {
        // Committed sizes were measured at commit; the others are still changing.
        let size = match snapshot.kind {
            SnapshotKind::Committed => snapshot.size,
            _ => snapshotter.usage(&snapshot.key)?.size,
        };
        usage.snapshots.push((snapshot, size));
    }
    for (digest, size) in blobs {
        let live = live_blobs.contains(&digest);
        if !live {
            usage.reclaimable += size;
        }
        usage.blobs.push((digest, size, live));
    }
    Ok(usage)
}

/// The live blobs and snapshot keys.
fn mark(meta: &MetadataStore, store: &ContentStore) -> Result<(BTreeSet<Digest>, BTreeSet<String>)> {
    let mut roots = Vec::new();
    let mut snapshots = BTreeSet::new();
    for image in meta.images()? {
        roots.push(image.manifest);
    }
    for (_, target) in meta.refs()? {
        match target {
            RefTarget::Blob(d) => roots.push(d),
            RefTarget::Snapshot(key) => {
                snapshots.insert(key);
            }
        }
    }
    let records = meta.snapshots()?;
    snapshots.extend(records.iter().filter(|s| s.kind != SnapshotKind::Committed).map(|s| s.key.clone()));
    // Parents of live snapshots are live; records come oldest first, so walk newest first.
    for record in records.iter().rev() {
        if snapshots.contains(&record.key)
            && let Some(parent) = &record.parent
        {
            snapshots.insert(parent.clone());
        }
    }
    Ok((reachable(store, roots), snapshots))
}

/// `roots` and every blob the manifests and indexes among them name, transitively.
fn reachable(store: &ContentStore, roots: impl IntoIterator<Item = Digest>) -> BTreeSet<Digest> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<Digest> = roots.into_iter().collect();
    while let Some(digest) = stack.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let small = store.size(&digest).is_ok_and(|s| s <= MAX_MANIFEST);
        let Some(json) = small.then(|| store.read_bytes(&digest).ok()).flatten() else {
            continue;
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&json) else {
            continue;
        };
        for key in ["config", "layers", "manifests", "blobs"] {
            let descriptors = match &value[key] {
                serde_json::Value::Array(items) => items.iter().collect(),
                single @ serde_json::Value::Object(_) => vec![single],
                _ => Vec::new(),
            };
            stack.extend(descriptors.iter().filter_map(|d| d["digest"].as_str()?.parse().ok()));
        }
    }
    seen
}

fn sweep(
    meta: &MetadataStore,
    store: &ContentStore,
    snapshotter: &dyn Snapshotter,
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Result<()> {
    let (live_blobs, live_snapshots) = mark(meta, store)?;
    // Newest first, so children go before their parents.
    for snapshot in meta.snapshots()?.into_iter().rev() {
        if !live_snapshots.contains(&snapshot.key) {
            snapshotter.remove(&snapshot.key)?;
            report.reclaimed += snapshot.size;
            report.snapshots.push(snapshot.key);
        }
    }
    for (digest, size) in store.walk()? {
        let young = fs::metadata(store.blob_path(&digest))
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age < options.grace));
        if !live_blobs.contains(&digest) && !young {
            store.delete(&digest)?;
            report.reclaimed += size;
            report.blobs.push(digest);
        }
    }
    Ok(())
}

/// Removes snapshot directories with no record: a crash between forgetting a snapshot and deleting it.
fn remove_orphan_dirs(root: &Path, meta: &MetadataStore) -> Result<()> {
    let dir = root.join("snapshots");
    let known: BTreeSet<String> = meta.snapshots()?.iter().map(|s| s.id.to_string()).collect();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", show(&dir)))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<u64>().is_ok() && !known.contains(&name) {
            remove_any(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image_owner;
    use crate::snapshot::{self, SnapshotterKind};
    use std::sync::Arc;

    struct Fixture {
        dir: tempfile::TempDir,
        meta: Arc<MetadataStore>,
        store: ContentStore,
        snapshotter: Box<dyn Snapshotter>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(MetadataStore::open(dir.path()).unwrap());
        let store = ContentStore::open(dir.path().join("content")).unwrap();
        let snapshotter = snapshot::open(dir.path(), meta.clone(), SnapshotterKind::Native).unwrap();
        Fixture { dir, meta, store, snapshotter }
    }

    fn committed(f: &Fixture, name: &str, parent: Option<&str>) {
        f.snapshotter.prepare(&format!("{name}-active"), parent).unwrap();
        f.snapshotter.commit(name, &format!("{name}-active")).unwrap();
    }

    #[test]
    fn prune_keeps_what_images_reach_and_drops_the_rest() {
        let f = fixture();
        let layer = f.store.write_bytes(b"layer").unwrap();
        let config = f.store.write_bytes(b"{}").unwrap();
        let manifest =
            serde_json::json!({"config": {"digest": config.to_string()}, "layers": [{"digest": layer.to_string()}]});
        let manifest = f.store.write_bytes(manifest.to_string().as_bytes()).unwrap();
        f.meta.put_image("app", &manifest).unwrap();
        committed(&f, "base", None);
        committed(&f, "top", Some("base"));
        f.meta.add_ref(&image_owner("app"), &RefTarget::Snapshot("top".into())).unwrap();
        let cached = f.store.write_bytes(b"cache only").unwrap();
        f.meta.put_cache("k", &serde_json::json!({})).unwrap();
        f.meta.add_ref(&cache_owner("k"), &RefTarget::Blob(cached.clone())).unwrap();
        committed(&f, "cache-snap", None);
        f.meta.add_ref(&cache_owner("k"), &RefTarget::Snapshot("cache-snap".into())).unwrap();
        f.snapshotter.prepare("running", Some("base")).unwrap();
        fs::create_dir_all(f.dir.path().join("snapshots/999/fs")).unwrap();

        let usage = disk_usage(&f.meta, &f.store, f.snapshotter.as_ref()).unwrap();
        assert_eq!(usage.images[0].1, 5 + 2 + f.store.size(&manifest).unwrap());
        assert_eq!(usage.cache[0].1, 10 + f.meta.snapshot("cache-snap").unwrap().unwrap().size);

        let options = PruneOptions::new().grace(Duration::ZERO);
        let report = prune(f.dir.path(), &f.meta, &f.store, f.snapshotter.as_ref(), &options).unwrap();
        assert_eq!(report.cache_records, ["k"]);
        assert_eq!(report.snapshots, ["cache-snap"]);
        assert_eq!(report.blobs, [cached]);
        for d in [&layer, &config, &manifest] {
            assert!(f.store.exists(d));
        }
        assert!(f.meta.snapshot("running").unwrap().is_some() && f.meta.snapshot("base").unwrap().is_some());
        assert!(!f.dir.path().join("snapshots/999").exists());

        let all = PruneOptions::new().all(true).grace(Duration::ZERO);
        let report = prune(f.dir.path(), &f.meta, &f.store, f.snapshotter.as_ref(), &all).unwrap();
        assert_eq!(report.snapshots, ["running"]);
        assert!(f.meta.snapshot("base").unwrap().is_some(), "the image still reaches base through top");
    }

    #[test]
    fn until_and_keep_storage_limit_what_goes() {
        let f = fixture();
        for (key, bytes) in [("old", &b"aaaa"[..]), ("new", &b"bbbbbbbb"[..])] {
            let blob = f.store.write_bytes(bytes).unwrap();
            f.meta.put_cache(key, &serde_json::json!({})).unwrap();
            f.meta.add_ref(&cache_owner(key), &RefTarget::Blob(blob)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let recent = PruneOptions::new().until(Duration::from_secs(3600)).grace(Duration::ZERO);
        assert!(
            prune(f.dir.path(), &f.meta, &f.store, f.snapshotter.as_ref(), &recent).unwrap().cache_records.is_empty()
        );
        let keep = PruneOptions::new().keep_storage(8).grace(Duration::ZERO);
        let report = prune(f.dir.path(), &f.meta, &f.store, f.snapshotter.as_ref(), &keep).unwrap();
        assert_eq!(report.cache_records, ["old"], "least recently used goes first, and only until 8 bytes remain");
        assert_eq!(f.meta.caches().unwrap().len(), 1);
    }
}
