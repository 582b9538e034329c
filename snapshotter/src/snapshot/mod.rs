//! Snapshotters in containerd's shape: `prepare` a writable snapshot on a committed parent, `commit` it into a
//! new parent, `view` a read-only one, and hand out [`Mount`]s for a runtime to mount.
//!
//! Every snapshot is a directory `<root>/snapshots/<id>/` with its tree in `fs/` (and overlay's `work/`); the
//! records live in the [`MetadataStore`]. Two implementations: [`OverlaySnapshotter`] stacks committed
//! directories with overlayfs, [`NativeSnapshotter`] copies them (for kernels or users without overlay).

pub(crate) mod copy;
mod native;
pub(crate) mod overlay;

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

pub use native::NativeSnapshotter;
pub use overlay::OverlaySnapshotter;

use crate::error::{Error, IoContext, Result, show};
use crate::metadata::{MetadataStore, SnapshotKind, SnapshotRecord};
use crate::mount::Mount;

/// The operations every snapshotter offers, as containerd defines them.
pub trait Snapshotter: fmt::Debug + Send + Sync {
    /// Which implementation this is.
    fn kind(&self) -> SnapshotterKind;
    /// The record of snapshot `key`, or `None` if there is none.
    fn stat(&self, key: &str) -> Result<Option<SnapshotRecord>>;
    /// Makes a writable snapshot `key` on top of the committed `parent` and returns how to mount it.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>>;
    /// Makes a read-only snapshot `key` of the committed `parent` and returns how to mount it.
    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>>;
    /// How to mount the existing active or view snapshot `key`.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;
    /// Turns the active snapshot `key` into the committed snapshot `name`; `key` is gone afterwards.
    fn commit(&self, name: &str, key: &str) -> Result<()>;
    /// Deletes a snapshot that is no other snapshot's parent.
    fn remove(&self, key: &str) -> Result<()>;
    /// Disk space and inodes used by the snapshot's own directory.
    fn usage(&self, key: &str) -> Result<Usage>;
    /// Where the snapshot's files are, in the form layer diff and apply need.
    fn layout(&self, key: &str) -> Result<SnapshotLayout>;
}

/// The snapshotter implementations, named as `--snapshotter` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotterKind {
    /// Kernel overlayfs over committed directories.
    Overlay,
    /// Full copies; works everywhere.
    Native,
}

impl FromStr for SnapshotterKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "overlayfs" | "overlay" => Ok(Self::Overlay),
            "native" => Ok(Self::Native),
            other => Err(Error::UnknownSnapshotter(other.to_owned())),
        }
    }
}

impl fmt::Display for SnapshotterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Overlay => "overlayfs",
            Self::Native => "native",
        })
    }
}

/// Disk use of one snapshot's own directory; hardlinked inodes count once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of allocated blocks.
    pub size: u64,
    /// Number of distinct inodes.
    pub inodes: u64,
}

/// Where a snapshot's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotLayout {
    /// An overlay upper directory: only this snapshot's changes, deletions as overlay whiteouts.
    OverlayUpper(PathBuf),
    /// A complete tree, and the complete tree of its parent (to compare against) if it has one.
    Full {
        /// The snapshot's tree.
        dir: PathBuf,
        /// The parent's tree.
        parent: Option<PathBuf>,
    },
}

/// Where [`probe`] remembers its choice, under the root.
const PROBED_FILE: &str = "snapshotter";

/// Finds the best snapshotter for `root`: overlayfs if an overlay can be mounted there, native otherwise. The
/// choice is remembered in `<root>/snapshotter`: a store keeps the kind its snapshots were made with, and later
/// commands skip the test mount, whose unmount alone waits out an RCU grace period (10-15 ms per command).
pub fn probe(root: &Path) -> SnapshotterKind {
    let file = root.join(PROBED_FILE);
    if let Some(kind) = fs::read_to_string(&file).ok().and_then(|text| text.trim().parse().ok()) {
        return kind;
    }
    let kind = match overlay::probe(root) {
        Ok(()) => SnapshotterKind::Overlay,
        Err(e) => {
            tracing::info!("overlayfs unavailable ({e}); using the native snapshotter");
            SnapshotterKind::Native
        }
    };
    // Best effort: without the file the next command probes again. Renamed into place, never read half-written.
    let temp = root.join(format!("{PROBED_FILE}.{}", std::process::id()));
    if let Err(e) = fs::write(&temp, format!("{kind}\n")).and_then(|()| fs::rename(&temp, &file)) {
        tracing::debug!("remembering the snapshotter in {}: {e}", show(&file));
        let _ = fs::remove_file(&temp);
    }
    kind
}

/// Opens the snapshotter of `kind` over the snapshots of `root`.
pub fn open(root: &Path, meta: Arc<MetadataStore>, kind: SnapshotterKind) -> Result<Box<dyn Snapshotter>> {
    let dirs = SnapshotDirs::open(root, meta)?;
    Ok(match kind {
        SnapshotterKind::Overlay => Box::new(OverlaySnapshotter::new(dirs)),
        SnapshotterKind::Native => Box::new(NativeSnapshotter::new(dirs)),
    })
}

/// Bookkeeping both snapshotters share: records in the metadata store, directories under `snapshots/`.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotDirs {
    dir: PathBuf,
    meta: Arc<MetadataStore>,
}

impl SnapshotDirs {
    fn open(root: &Path, meta: Arc<MetadataStore>) -> Result<Self> {
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).context(|| format!("creating {}", show(&dir)))?;
        Ok(Self { dir, meta })
    }

    /// `<root>/snapshots/<id>`.
    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// The snapshot's tree (or overlay upper directory).
    fn fs(&self, record: &SnapshotRecord) -> PathBuf {
        self.path(record.id).join("fs")
    }

    /// Records a new snapshot on `parent` (which must be committed) and creates its `fs/` directory.
    fn create(&self, key: &str, parent: Option<&str>, kind: SnapshotKind) -> Result<SnapshotRecord> {
        if let Some(parent) = parent {
            let record = self.get(parent)?;
            if record.kind != SnapshotKind::Committed {
                let reason = format!("cannot be a parent: it is {}, not committed", record.kind.as_str());
                return Err(Error::SnapshotState { key: parent.to_owned(), reason });
            }
        }
        let record = self.meta.insert_snapshot(key, parent, kind)?;
        let fs_dir = self.fs(&record);
        fs::create_dir_all(&fs_dir).context(|| format!("creating {}", show(&fs_dir)))?;
        Ok(record)
    }

    /// The record of `key`, or `SnapshotNotFound`.
    fn get(&self, key: &str) -> Result<SnapshotRecord> {
        self.meta.snapshot(key)?.ok_or_else(|| Error::SnapshotNotFound(key.to_owned()))
    }

    /// The committed chain from `parent` down to the base, topmost first.
    fn chain(&self, parent: Option<&str>) -> Result<Vec<SnapshotRecord>> {
        let mut chain = Vec::new();
        let mut seen = HashSet::new();
        let mut next = parent.map(str::to_owned);
        while let Some(key) = next {
            if !seen.insert(key.clone()) {
                return Err(Error::SnapshotState { key, reason: "its parent chain loops".into() });
            }
            let record = self.get(&key)?;
            next = record.parent.clone();
            chain.push(record);
        }
        Ok(chain)
    }

    /// Commits the active snapshot `key` as `name`, recording its size.
    fn commit(&self, name: &str, key: &str) -> Result<SnapshotRecord> {
        let record = self.get(key)?;
        if record.kind != SnapshotKind::Active {
            let reason = format!("cannot be committed: it is {}, not active", record.kind.as_str());
            return Err(Error::SnapshotState { key: key.to_owned(), reason });
        }
        let usage = dir_usage(&self.fs(&record))?;
        self.meta.commit_snapshot(key, name, usage.size)
    }

    /// Forgets the snapshot, then deletes its directory (a crash in between leaves a directory GC removes).
    fn remove(&self, key: &str) -> Result<()> {
        let record = self.get(key)?;
        self.meta.delete_snapshot(key)?;
        copy::remove_any(&self.path(record.id))
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        dir_usage(&self.fs(&self.get(key)?))
    }
}

/// Walks `dir` adding up allocated blocks and distinct inodes.
pub(crate) fn dir_usage(dir: &Path) -> Result<Usage> {
    let mut usage = Usage::default();
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).context(|| format!("reading {}", show(&path)))?;
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        usage.size += meta.blocks() * 512;
        usage.inodes += 1;
        if meta.is_dir() {
            for entry in fs::read_dir(&path).context(|| format!("listing {}", show(&path)))? {
                stack.push(entry.context(|| format!("listing {}", show(&path)))?.path());
            }
        }
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_parses_the_flag_values() {
        assert_eq!("overlayfs".parse::<SnapshotterKind>().unwrap(), SnapshotterKind::Overlay);
        assert_eq!("native".parse::<SnapshotterKind>().unwrap(), SnapshotterKind::Native);
        assert!(matches!("zfs".parse::<SnapshotterKind>(), Err(Error::UnknownSnapshotter(_))));
        assert_eq!(SnapshotterKind::Overlay.to_string(), "overlayfs");
    }

    #[test]
    fn probe_remembers_its_choice_in_the_root() {
        let root = tempfile::tempdir().unwrap();
        let first = probe(root.path());
        let remembered = fs::read_to_string(root.path().join(PROBED_FILE)).unwrap();
        assert_eq!(remembered.trim().parse::<SnapshotterKind>().unwrap(), first);
        // The file wins over a new test mount: a store keeps its kind.
        fs::write(root.path().join(PROBED_FILE), "native\n").unwrap();
        assert_eq!(probe(root.path()), SnapshotterKind::Native);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1, "no probe or temp directory left behind");
    }

    #[test]
    fn usage_counts_hardlinks_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), vec![1u8; 8192]).unwrap();
        fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        let usage = dir_usage(dir.path()).unwrap();
        assert_eq!(usage.inodes, 2);
        assert!(usage.size >= 8192 && usage.size < 2 * 8192 + 8192, "{usage:?}");
    }
}
