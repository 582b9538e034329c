//! The file attributes strata carries across copies, diffs and layers: owner, mode, mtime and xattrs, read
//! from a path and written relative to a directory descriptor (so apply never follows a path out of its root).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

/// Largest xattr value Linux allows; one buffer of this size serves every read.
const XATTR_MAX: usize = 64 * 1024;

/// Owner, permissions, mtime and extended attributes of one filesystem entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attrs {
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Nanoseconds part of the modification time.
    pub mtime_nsec: i64,
    /// (name, value) pairs, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Attrs {
    /// Reads the attributes of `path` without following a final symlink.
    pub fn read(path: &Path, meta: &std::fs::Metadata) -> io::Result<Self> {
        Ok(Self {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            xattrs: read_xattrs(path)?,
        })
    }

    /// Sets these attributes on `name` in `dir` (an absolute `name` ignores `dir`), never following a final
    /// symlink. Order matters: chown clears setuid bits and file capabilities, so mode and xattrs come after it.
    pub fn write(&self, dir: BorrowedFd<'_>, name: &Path, is_symlink: bool) -> io::Result<()> {
        rustix::fs::chownat(
            dir,
            name,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        let path = fd_relative_path(dir, name);
        for (key, value) in &self.xattrs {
            match rustix::fs::lsetxattr(&path, key.as_str(), value, XattrFlags::empty()) {
                // user.* xattrs cannot exist on symlinks; tar and containerd drop them too.
                Err(rustix::io::Errno::PERM) if is_symlink => {}
                other => other.map_err(|e| io::Error::other(format!("setting xattr {key}: {e}")))?,
            }
        }
        if !is_symlink {
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(self.mode), AtFlags::empty())?;
        }
        let mtime = Timespec { tv_sec: self.mtime, tv_nsec: self.mtime_nsec as _ };
        let times = Timestamps { last_access: mtime, last_modification: mtime };
        rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }
}

/// The extended attributes of `path` (not following a final symlink), sorted by name.
pub fn read_xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    // Most files have none: asking for the size first spares them the large buffer.
    match rustix::fs::llistxattr_query(path) {
        Ok(0) | Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let mut buf = vec![0u8; XATTR_MAX];
    let len = match rustix::fs::llistxattr(path, &mut buf[..]) {
        Ok(len) => len,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let names: Vec<String> = buf[..len]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let mut xattrs = Vec::with_capacity(names.len());
    for name in names {
        match rustix::fs::lgetxattr(path, name.as_str(), &mut buf[..]) {
            Ok(n) => xattrs.push((name, buf[..n].to_vec())),
            // Removed between list and get: it is simply not there.
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(e.into()),
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// A path naming `name` inside the directory open as `dir`, usable by path-only calls such as `lsetxattr`:
/// the kernel resolves `/proc/self/fd/N` to the directory itself, so nothing outside it is looked up.
pub(crate) fn fd_relative_path(dir: BorrowedFd<'_>, name: &Path) -> PathBuf {
    if name.is_absolute() {
        name.to_owned()
    } else {
        PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_mode_mtime_and_xattrs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"y").unwrap();
        rustix::fs::lsetxattr(&a, "user.strata", b"v", XattrFlags::empty()).unwrap();
        let mut attrs = Attrs::read(&a, &std::fs::symlink_metadata(&a).unwrap()).unwrap();
        attrs.mode = 0o4751;
        attrs.mtime = 1_000_000;
        attrs.mtime_nsec = 0;
        attrs.write(rustix::fs::CWD, &b, false).unwrap();
        let got = Attrs::read(&b, &std::fs::symlink_metadata(&b).unwrap()).unwrap();
        assert_eq!(got, attrs);
        assert_eq!(got.xattrs, vec![("user.strata".to_owned(), b"v".to_vec())]);
    }
}
