//! The native snapshotter: every snapshot is a full copy of its parent. Slower and bigger than overlay, but
//! needs nothing from the kernel beyond bind mounts.

use crate::error::Result;
use crate::metadata::{SnapshotKind, SnapshotRecord};
use crate::mount::Mount;
use crate::snapshot::copy::{Whiteouts, copy_tree};
use crate::snapshot::{SnapshotDirs, SnapshotLayout, Snapshotter, SnapshotterKind, Usage};

/// Snapshots as full directory copies.
#[derive(Debug)]
pub struct NativeSnapshotter {
    dirs: SnapshotDirs,
}

impl NativeSnapshotter {
    pub(crate) fn new(dirs: SnapshotDirs) -> Self {
        Self { dirs }
    }

    fn create(&self, key: &str, parent: Option<&str>, kind: SnapshotKind) -> Result<Vec<Mount>> {
        let record = self.dirs.create(key, parent, kind)?;
        if let Some(parent) = parent {
            let parent = self.dirs.get(parent)?;
            copy_tree(
                &self.dirs.fs(&parent),
                &self.dirs.fs(&record),
                Whiteouts::Keep,
            )?;
        }
        Ok(self.mounts_of(&record))
    }

    fn mounts_of(&self, record: &SnapshotRecord) -> Vec<Mount> {
        vec![Mount::bind(
            &self.dirs.fs(record),
            record.kind == SnapshotKind::View,
        )]
    }
}

impl Snapshotter for NativeSnapshotter {
    fn kind(&self) -> SnapshotterKind {
        SnapshotterKind::Native
    }

    fn stat(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        self.dirs.meta.snapshot(key)
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.create(key, parent, SnapshotKind::Active)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.create(key, parent, SnapshotKind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        Ok(self.mounts_of(&self.dirs.get(key)?))
    }

    fn commit(&self, name: &str, key: &str) -> Result<()> {
        self.dirs.commit(name, key).map(drop)
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.dirs.remove(key)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        self.dirs.usage(key)
    }

    fn layout(&self, key: &str) -> Result<SnapshotLayout> {
        let record = self.dirs.get(key)?;
        let parent = match record.parent.as_deref() {
            Some(parent) => Some(self.dirs.fs(&self.dirs.get(parent)?)),
            None => None,
        };
        Ok(SnapshotLayout::Full {
            dir: self.dirs.fs(&record),
            parent,
        })
    }
}
