//! The mount points the runtime creates in a RUN step's root for its mounts (`/run/secrets/id`,
//! `/run/buildkit/ssh_agent.0`, ...) are removed after the step while still empty, keeping the parent's times
//! as they were before the removal, so they never reach the layer: BuildKit's `executor/stubs.go` does the same.
//! They are found in the mounted tree (symlinks resolved) and removed from the snapshot's own writes (an
//! overlay upper directory holds a path that did not exist below as a plain entry, so no whiteout is needed).

use std::fs::{self, FileTimes};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::file::resolve_in_root;

/// Paths, relative to the root with symlinks resolved, that did not exist before the step; deepest first for
/// each mount target.
#[derive(Debug, Default)]
pub(crate) struct Stubs {
    paths: Vec<PathBuf>,
}

impl Stubs {
    /// The missing paths on the way to each of `targets` in the mounted tree `root`.
    pub(crate) fn find<'a>(root: &Path, targets: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut paths = Vec::new();
        for target in targets {
            let mut path = Path::new(target);
            while path.parent().is_some() {
                let host = resolve_in_root(root, &path.to_string_lossy(), false)?;
                if host.symlink_metadata().is_ok() {
                    break;
                }
                paths.push(host.strip_prefix(root).unwrap_or(&host).to_owned());
                path = path.parent().unwrap_or(Path::new("/"));
            }
        }
        Ok(Self { paths })
    }

    /// Whether there is nothing to remove.
    pub(crate) fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Removes the stubs that are still empty files or directories from `writes`, the directory the step's
    /// changes are in.
    pub(crate) fn remove(&self, writes: &Path) -> Result<()> {
        for relative in &self.paths {
            let host = writes.join(relative);
            let path = relative.display();
            let Ok(meta) = host.symlink_metadata() else { continue };
            let empty = if meta.is_dir() {
                fs::read_dir(&host).io_context(|| format!("reading {path}"))?.next().is_none()
            } else {
                meta.is_file() && meta.len() == 0
            };
            if !empty {
                continue;
            }
            let parent = host.parent().map(PathBuf::from).unwrap_or_else(|| writes.to_owned());
            let times = fs::metadata(&parent).io_context(|| format!("reading the times of {path}'s parent"))?;
            if meta.is_dir() { fs::remove_dir(&host) } else { fs::remove_file(&host) }
                .io_context(|| format!("removing the mount point {path}"))?;
            let restored = FileTimes::new()
                .set_accessed(times.accessed().io_context(|| format!("reading {path}'s parent atime"))?)
                .set_modified(times.modified().io_context(|| format!("reading {path}'s parent mtime"))?);
            fs::File::open(&parent)
                .and_then(|dir| dir.set_times(restored))
                .io_context(|| format!("restoring the times of {path}'s parent"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn created_empty_mount_points_go_and_the_parent_keeps_its_times() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("run")).unwrap();
        let stubs = Stubs::find(root.path(), ["/run/buildkit/ssh_agent.0", "/run/secrets/kept"]).unwrap();
        let expected = ["run/buildkit/ssh_agent.0", "run/buildkit", "run/secrets/kept", "run/secrets"];
        assert_eq!(stubs.paths, expected.map(PathBuf::from));
        // What the runtime creates, and a file the step wrote where a mount point was.
        fs::create_dir_all(root.path().join("run/buildkit")).unwrap();
        fs::write(root.path().join("run/buildkit/ssh_agent.0"), "").unwrap();
        fs::create_dir_all(root.path().join("run/secrets")).unwrap();
        fs::write(root.path().join("run/secrets/kept"), "written by the step").unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        fs::File::open(root.path().join("run")).unwrap().set_times(FileTimes::new().set_modified(old)).unwrap();
        stubs.remove(root.path()).unwrap();
        assert!(!root.path().join("run/buildkit").exists());
        assert!(root.path().join("run/secrets/kept").exists(), "content the step wrote stays");
        assert_eq!(fs::metadata(root.path().join("run")).unwrap().modified().unwrap(), old);
    }
}
