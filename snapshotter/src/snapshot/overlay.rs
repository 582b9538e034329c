//! The overlayfs snapshotter: a committed snapshot is a directory, and a new snapshot mounts its parents'
//! directories as overlay lower layers under its own upper directory.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, show};
use crate::fsmeta::read_xattrs;
use crate::metadata::{SnapshotKind, SnapshotRecord};
use crate::mount::{Mount, mount_all};
use crate::snapshot::copy::{Whiteouts, copy_tree, remove_any};
use crate::snapshot::{SnapshotDirs, SnapshotLayout, Snapshotter, SnapshotterKind, Usage};

/// The kernel refuses more lower layers than this (`OVL_MAX_STACK`); deeper chains get their base flattened.
pub const MAX_LOWER_LAYERS: usize = 500;

/// Snapshots as overlayfs layers.
#[derive(Debug)]
pub struct OverlaySnapshotter {
    dirs: SnapshotDirs,
    max_lowers: usize,
}

impl OverlaySnapshotter {
    pub(crate) fn new(dirs: SnapshotDirs) -> Self {
        Self {
            dirs,
            max_lowers: MAX_LOWER_LAYERS,
        }
    }

    fn work(&self, record: &SnapshotRecord) -> PathBuf {
        self.dirs.path(record.id).join("work")
    }

    fn mounts_of(&self, record: &SnapshotRecord) -> Result<Vec<Mount>> {
        let lowers = self.lowers(record)?;
        let fs_dir = self.dirs.fs(record);
        Ok(vec![match (record.kind, lowers.as_slice()) {
            (SnapshotKind::Active, []) => Mount::bind(&fs_dir, false),
            (SnapshotKind::Active, _) => {
                Mount::overlay(&lowers, Some((&fs_dir, &self.work(record))))
            }
            // A view of nothing is an empty directory; a view of one layer needs no overlay.
            (_, []) => Mount::bind(&fs_dir, true),
            (_, [only]) => Mount::bind(only, true),
            (_, _) => Mount::overlay(&lowers, None),
        }])
    }

    /// The parents' directories, topmost first; beyond the kernel's limit the base of the chain is merged
    /// into one directory private to this snapshot (made once, reused by later `mounts` calls).
    fn lowers(&self, record: &SnapshotRecord) -> Result<Vec<PathBuf>> {
        let chain = self.dirs.chain(record.parent.as_deref())?;
        let mut lowers: Vec<PathBuf> = chain.iter().map(|r| self.dirs.fs(r)).collect();
        if lowers.len() <= self.max_lowers {
            return Ok(lowers);
        }
        let base = lowers.split_off(self.max_lowers - 1);
        let flat = self.dirs.path(record.id).join("flat");
        if !flat.exists() {
            let partial = self.dirs.path(record.id).join("flat.partial");
            remove_any(&partial)?;
            for layer in base.iter().rev() {
                copy_tree(layer, &partial, Whiteouts::Apply)?;
            }
            fs::rename(&partial, &flat)
                .context(|| format!("moving {} to {}", show(&partial), show(&flat)))?;
        }
        lowers.push(flat);
        Ok(lowers)
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn kind(&self) -> SnapshotterKind {
        SnapshotterKind::Overlay
    }

    fn stat(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        self.dirs.meta.snapshot(key)
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        let record = self.dirs.create(key, parent, SnapshotKind::Active)?;
        let work = self.work(&record);
        fs::create_dir_all(&work).context(|| format!("creating {}", show(&work)))?;
        self.mounts_of(&record)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        let record = self.dirs.create(key, parent, SnapshotKind::View)?;
        self.mounts_of(&record)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let record = self.dirs.get(key)?;
        self.mounts_of(&record)
    }

    fn commit(&self, name: &str, key: &str) -> Result<()> {
        let record = self.dirs.commit(name, key)?;
        // The work directory only matters while mounted; a committed layer is never mounted writable again.
        remove_any(&self.work(&record))
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.dirs.remove(key)
    }

    fn usage(&self, key: &str) -> Result<Usage> {
        self.dirs.usage(key)
    }

    fn layout(&self, key: &str) -> Result<SnapshotLayout> {
        Ok(SnapshotLayout::OverlayUpper(
            self.dirs.fs(&self.dirs.get(key)?),
        ))
    }
}

/// Whether `meta` is an overlay whiteout: a character device numbered 0/0.
pub(crate) fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory at `path` is marked opaque (hides everything below it) for overlayfs.
pub(crate) fn is_opaque_xattr(path: &Path) -> bool {
    read_xattrs(path).is_ok_and(|xattrs| {
        xattrs.iter().any(|(name, value)| {
            (name == "trusted.overlay.opaque" || name == "user.overlay.opaque")
                && value.as_slice() == b"y"
        })
    })
}

/// Mounts a tiny overlay under `root` to see whether this kernel and user can.
pub(crate) fn probe(root: &Path) -> Result<()> {
    let dir = fresh_dir(root)?;
    let result = (|| {
        let [lower, upper, work, merged] =
            ["lower", "upper", "work", "merged"].map(|d| dir.join(d));
        for d in [&lower, &upper, &work, &merged] {
            fs::create_dir(d).context(|| format!("creating {}", show(d)))?;
        }
        // Two lowers, so the probe exercises a real overlay rather than a degenerate one.
        let lower2 = dir.join("lower2");
        fs::create_dir(&lower2).context(|| format!("creating {}", show(&lower2)))?;
        mount_all(
            &[Mount::overlay(&[lower, lower2], Some((&upper, &work)))],
            &merged,
        )?
        .unmount()
    })();
    remove_any(&dir)?;
    result
}

fn fresh_dir(root: &Path) -> Result<PathBuf> {
    let dir = root.join(format!("overlay-probe-{}", std::process::id()));
    remove_any(&dir)?;
    fs::create_dir_all(&dir).context(|| format!("creating {}", show(&dir)))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::MetadataStore;
    use std::sync::Arc;

    #[test]
    fn deep_chains_flatten_their_base_and_still_mount() {
        if !strata_testkit::require_root("deep_chains_flatten_their_base_and_still_mount") {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let meta = Arc::new(MetadataStore::open(root.path()).unwrap());
        let mut overlay = OverlaySnapshotter::new(SnapshotDirs::open(root.path(), meta).unwrap());
        overlay.max_lowers = 4;
        let mut parent: Option<String> = None;
        for i in 0..7 {
            overlay
                .prepare(&format!("a{i}"), parent.as_deref())
                .unwrap();
            let SnapshotLayout::OverlayUpper(upper) = overlay.layout(&format!("a{i}")).unwrap()
            else {
                panic!()
            };
            fs::write(upper.join(format!("f{i}")), i.to_string()).unwrap();
            if i == 5 {
                // Deleting a file of the flattened base must still hide it.
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    upper.join("f0"),
                    rustix::fs::FileType::CharacterDevice,
                    rustix::fs::Mode::empty(),
                    0,
                )
                .unwrap();
            }
            overlay.commit(&format!("c{i}"), &format!("a{i}")).unwrap();
            parent = Some(format!("c{i}"));
        }
        let mounts = overlay.view("v", parent.as_deref()).unwrap();
        assert_eq!(mounts[0].options[0].matches(':').count(), 3, "{mounts:?}");
        let target = root.path().join("mnt");
        fs::create_dir(&target).unwrap();
        let guard = mount_all(&mounts, &target).unwrap();
        let mut names: Vec<_> = fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["f1", "f2", "f3", "f4", "f5", "f6"]);
        drop(guard);
    }
}
