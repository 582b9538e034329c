//! Snapshots opened at host paths for the duration of one op: committed inputs read-only, the op's output
//! writable. Both clean up after themselves when dropped, so a failed op leaves no active snapshot behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use strata_snapshotter::{Mount, MountGuard, SnapshotLayout, Snapshotter, mount_all};

use crate::error::{IoContext, Result, StoreContext};

/// A key no other snapshot has: `prefix`, process id, time and a counter.
pub(crate) fn unique_key(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A mount point of our own, with a clear name in errors.
fn mount_point() -> Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("strata-mnt-").tempdir().io_context(|| "creating a mount point".to_owned())
}

/// A committed snapshot (or the empty tree) readable at [`ReadTree::path`] until dropped.
pub struct ReadTree {
    path: PathBuf,
    guard: Option<MountGuard>,
    view: Option<String>,
    snapshotter: Arc<dyn Snapshotter>,
    _dir: Option<tempfile::TempDir>,
}

impl ReadTree {
    /// Opens `key`; `None` is the empty tree of `scratch`.
    pub fn open(snapshotter: &Arc<dyn Snapshotter>, key: Option<&str>) -> Result<Self> {
        let mut tree =
            Self { path: PathBuf::new(), guard: None, view: None, snapshotter: snapshotter.clone(), _dir: None };
        let Some(key) = key else {
            let dir = mount_point()?;
            tree.path = dir.path().to_owned();
            tree._dir = Some(dir);
            return Ok(tree);
        };
        // A native snapshot is a complete tree already; reading it in place saves a full copy per input.
        if let SnapshotLayout::Full { dir, .. } = snapshotter.layout(key).store_context(|| format!("opening {key}"))? {
            tree.path = dir;
            return Ok(tree);
        }
        let view = unique_key("view");
        let mounts = snapshotter.view(&view, Some(key)).store_context(|| format!("making a view of {key}"))?;
        tree.view = Some(view);
        let dir = mount_point()?;
        tree.guard = Some(mount_all(&mounts, dir.path()).store_context(|| format!("mounting a view of {key}"))?);
        tree.path = dir.path().to_owned();
        tree._dir = Some(dir);
        Ok(tree)
    }

    /// Where the tree is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ReadTree {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Some(view) = self.view.take()
            && let Err(e) = self.snapshotter.remove(&view)
        {
            tracing::warn!("removing the view {view}: {e}");
        }
    }
}

/// A writable snapshot on a committed parent; removed on drop unless committed.
pub(crate) struct ActiveTree {
    key: String,
    mounts: Vec<Mount>,
    guard: Option<MountGuard>,
    dir: Option<tempfile::TempDir>,
    snapshotter: Arc<dyn Snapshotter>,
}

impl ActiveTree {
    /// Prepares a writable snapshot on `parent` (`None` starts empty).
    pub(crate) fn prepare(snapshotter: &Arc<dyn Snapshotter>, parent: Option<&str>) -> Result<Self> {
        let key = unique_key("active");
        let mounts = snapshotter
            .prepare(&key, parent)
            .store_context(|| format!("preparing a snapshot on {}", parent.unwrap_or("scratch")))?;
        Ok(Self { key, mounts, guard: None, dir: None, snapshotter: snapshotter.clone() })
    }

    /// How to mount it (for the runtime).
    pub(crate) fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// Mounts it on a host directory of its own (once) and returns that directory.
    pub(crate) fn mount(&mut self) -> Result<PathBuf> {
        if self.dir.is_none() {
            let dir = mount_point()?;
            let guard = mount_all(&self.mounts, dir.path()).store_context(|| format!("mounting {}", self.key))?;
            self.guard = Some(guard);
            self.dir = Some(dir);
        }
        Ok(self.dir.as_ref().expect("mounted above").path().to_owned())
    }

    /// The host directory its writes land in (an overlay upper directory, or the whole tree), to change them
    /// without mounting it while a just-finished container may still hold its own mount.
    pub(crate) fn writes_dir(&self) -> Result<PathBuf> {
        match self.snapshotter.layout(&self.key).store_context(|| format!("locating {}", self.key))? {
            SnapshotLayout::OverlayUpper(dir) | SnapshotLayout::Full { dir, .. } => Ok(dir),
        }
    }

    /// Unmounts it from its host directory, if mounted.
    pub(crate) fn unmount(&mut self) -> Result<()> {
        if let Some(guard) = self.guard.take() {
            guard.unmount().store_context(|| format!("unmounting {}", self.key))?;
        }
        // Only now: removing the mount point while mounted would delete the snapshot's files through it.
        self.dir = None;
        Ok(())
    }

    /// Unmounts and commits it as `name`.
    pub(crate) fn commit(mut self, name: &str) -> Result<()> {
        self.unmount()?;
        self.snapshotter.commit(name, &self.key).store_context(|| format!("committing {} as {name}", self.key))?;
        self.key.clear();
        Ok(())
    }
}

impl Drop for ActiveTree {
    fn drop(&mut self) {
        drop(self.guard.take());
        if !self.key.is_empty()
            && let Err(e) = self.snapshotter.remove(&self.key)
        {
            tracing::warn!("removing the unfinished snapshot {}: {e}", self.key);
        }
    }
}
