//! Plain tree copies that keep everything a layer can carry: owners, modes, mtimes, xattrs, hardlinks,
//! symlinks and device nodes. The native snapshotter copies parents with it; the overlay snapshotter merges
//! layer directories with it when a chain is too deep for the kernel.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode};

use crate::error::{IoContext, Result, show};
use crate::fsmeta::Attrs;
use crate::snapshot::overlay::{is_opaque_xattr, is_whiteout};

/// What to do with overlayfs whiteouts found in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whiteouts {
    /// Copy them as they are (they are just device nodes and xattrs).
    Keep,
    /// Apply them to the destination, as the kernel would when stacking the source on top of it.
    Apply,
}

/// Copies the tree at `src` into `dst` (which may already hold a tree to merge into).
pub(crate) fn copy_tree(src: &Path, dst: &Path, whiteouts: Whiteouts) -> Result<()> {
    let mut copier = Copier { whiteouts, links: HashMap::new() };
    fs::create_dir_all(dst).context(|| format!("creating {}", show(dst)))?;
    copier.copy_dir(src, dst)
}

struct Copier {
    whiteouts: Whiteouts,
    /// (device, inode) of multiply linked sources -> the first destination path, to link again.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier {
    fn copy_dir(&mut self, src: &Path, dst: &Path) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(src)
            .and_then(|rd| rd.map(|e| e.map(|e| e.file_name())).collect::<io::Result<Vec<_>>>())
            .context(|| format!("listing {}", show(src)))?;
        entries.sort();
        for name in entries {
            self.copy_entry(&src.join(&name), &dst.join(&name))?;
        }
        let meta = fs::symlink_metadata(src).context(|| format!("reading {}", show(src)))?;
        self.write_attrs(src, dst, &meta, false)
    }

    fn copy_entry(&mut self, src: &Path, dst: &Path) -> Result<()> {
        let meta = fs::symlink_metadata(src).context(|| format!("reading {}", show(src)))?;
        let kind = meta.file_type();
        if self.whiteouts == Whiteouts::Apply && is_whiteout(&meta) {
            return remove_any(dst);
        }
        let existing = fs::symlink_metadata(dst).ok();
        let merge_dir = kind.is_dir()
            && existing.as_ref().is_some_and(|m| m.is_dir())
            && !(self.whiteouts == Whiteouts::Apply && is_opaque_xattr(src));
        if !merge_dir && existing.is_some() {
            remove_any(dst)?;
        }
        if kind.is_dir() {
            if !merge_dir {
                fs::create_dir(dst).context(|| format!("creating {}", show(dst)))?;
            }
            return self.copy_dir(src, dst);
        }
        if meta.nlink() > 1 && !kind.is_dir() {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                return fs::hard_link(first, dst).context(|| format!("linking {} to {}", show(dst), show(first)));
            }
            self.links.insert((meta.dev(), meta.ino()), dst.to_owned());
        }
        if kind.is_file() {
            fs::copy(src, dst).context(|| format!("copying {} to {}", show(src), show(dst)))?;
        } else if kind.is_symlink() {
            let target = fs::read_link(src).context(|| format!("reading link {}", show(src)))?;
            std::os::unix::fs::symlink(&target, dst).context(|| format!("creating symlink {}", show(dst)))?;
        } else if kind.is_socket() {
            // A socket is only meaningful to the process that bound it; layers never carry them.
            return Ok(());
        } else {
            let file_type = FileType::from_raw_mode(meta.mode());
            rustix::fs::mknodat(rustix::fs::CWD, dst, file_type, Mode::from_raw_mode(meta.mode()), meta.rdev())
                .map_err(io::Error::from)
                .context(|| format!("creating device node {}", show(dst)))?;
        }
        self.write_attrs(src, dst, &meta, kind.is_symlink())
    }

    fn write_attrs(&self, src: &Path, dst: &Path, meta: &fs::Metadata, is_symlink: bool) -> Result<()> {
        let mut attrs = Attrs::read(src, meta).context(|| format!("reading attributes of {}", show(src)))?;
        if self.whiteouts == Whiteouts::Apply {
            // Overlay bookkeeping (opaque markers, redirects) has done its job once merged.
            attrs.xattrs.retain(|(name, _)| !is_overlay_xattr(name));
        }
        attrs.write(rustix::fs::CWD, dst, is_symlink).context(|| format!("setting attributes of {}", show(dst)))
    }
}

/// Whether an xattr is overlayfs's own bookkeeping rather than file content.
pub(crate) fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// Removes a file, symlink, device or whole directory tree; an absent path is fine.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.context(|| format!("removing {}", show(path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keeps_hardlinks_symlinks_modes_and_mtimes() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), b"data").unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o741)).unwrap();
        fs::hard_link(src.join("d/f"), src.join("link")).unwrap();
        std::os::unix::fs::symlink("d/f", src.join("sym")).unwrap();
        copy_tree(&src, &dst, Whiteouts::Keep).unwrap();
        let f = fs::metadata(dst.join("d/f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o741);
        assert_eq!(f.ino(), fs::metadata(dst.join("link")).unwrap().ino());
        assert_eq!(f.mtime(), fs::metadata(src.join("d/f")).unwrap().mtime());
        assert_eq!(fs::read_link(dst.join("sym")).unwrap(), Path::new("d/f"));
    }
}
