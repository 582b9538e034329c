//! What the solver keeps under the state root besides snapshots and cache records: persistent cache mounts and
//! the records of remembered context digests. `strata prune --all` removes both, as `docker buildx prune --all`
//! removes cache mounts.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// `<root>/cache-mounts`: one directory per cache mount id (and seed).
pub(crate) fn cache_mounts_dir(root: &Path) -> PathBuf {
    root.join("cache-mounts")
}

/// `<root>/context-hashes`: one record per context directory.
pub(crate) fn context_hashes_dir(root: &Path) -> PathBuf {
    root.join("context-hashes")
}

/// Takes a flock on `dir` (exclusive, or shared with other shared users), waiting for it if `wait`; `None` when it
/// is taken and not waiting.
pub(crate) fn lock_dir(dir: &Path, exclusive: bool, wait: bool) -> Result<Option<fs::File>> {
    let file = fs::File::open(dir).io_context(|| format!("opening {} to lock it", dir.display()))?;
    let kind = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
    let flags = if wait { kind } else { kind | libc::LOCK_NB };
    // SAFETY: flock on a descriptor we own; the lock goes with the file when it is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), flags) } == 0 {
        return Ok(Some(file));
    }
    match std::io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::EWOULDBLOCK) && !wait => Ok(None),
        e => Err(e).io_context(|| format!("locking {}", dir.display())),
    }
}

/// What [`prune`] removed.
#[derive(Debug, Default)]
pub struct StatePruned {
    /// Cache mount directories removed.
    pub cache_mounts: Vec<PathBuf>,
    /// Context digest records removed.
    pub context_records: Vec<PathBuf>,
    /// Bytes they used.
    pub reclaimed: u64,
}

/// Removes every cache mount no step is using (a step holds its lock, so that one stays) and every context digest
/// record (they only save reading files again).
pub fn prune(root: &Path) -> Result<StatePruned> {
    let mut pruned = StatePruned::default();
    for dir in entries(&cache_mounts_dir(root))? {
        // A cache being seeded is made under a temporary name, unlocked: only an old one is a leftover.
        if dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".staging-")) && !older_than_an_hour(&dir) {
            continue;
        }
        // A step in use holds a flock on its cache; one that cannot be taken at once is left alone.
        let Some(_lock) = lock_dir(&dir, true, false)? else { continue };
        pruned.reclaimed += size_of(&dir)?;
        fs::remove_dir_all(&dir).io_context(|| format!("removing cache mount {}", dir.display()))?;
        pruned.cache_mounts.push(dir);
    }
    for record in entries(&context_hashes_dir(root))? {
        pruned.reclaimed += size_of(&record)?;
        fs::remove_file(&record).io_context(|| format!("removing context record {}", record.display()))?;
        pruned.context_records.push(record);
    }
    Ok(pruned)
}

/// Whether `path` was last modified over an hour ago.
fn older_than_an_hour(path: &Path) -> bool {
    let modified = fs::symlink_metadata(path).and_then(|m| m.modified());
    modified.is_ok_and(|t| t.elapsed().is_ok_and(|age| age > std::time::Duration::from_secs(3600)))
}

/// The entries of `dir`, none when it does not exist.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let entries: std::io::Result<Vec<_>> = entries.map(|e| e.map(|e| e.path())).collect();
            entries.io_context(|| format!("reading {}", dir.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).io_context(|| format!("reading {}", dir.display())),
    }
}

/// The bytes of regular files under `path`, links not followed.
fn size_of(path: &Path) -> Result<u64> {
    let meta = fs::symlink_metadata(path).io_context(|| format!("reading {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(if meta.is_file() { meta.len() } else { 0 });
    }
    let mut total = 0;
    for entry in entries(path)? {
        total += size_of(&entry)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_directory_locks_follow_the_sharing_modes() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path(), true, false).unwrap();
        assert!(first.is_some());
        assert!(lock_dir(dir.path(), true, false).unwrap().is_none(), "a private user gets another directory");
        drop(first);
        let shared = [lock_dir(dir.path(), false, false).unwrap(), lock_dir(dir.path(), false, false).unwrap()];
        assert!(shared.iter().all(Option::is_some), "shared users share");
        assert!(lock_dir(dir.path(), true, false).unwrap().is_none(), "nobody locks while shared users work");
        drop(shared);
        assert!(lock_dir(dir.path(), true, false).unwrap().is_some());
    }

    #[test]
    fn pruning_spares_a_cache_mount_in_use() {
        let root = tempfile::tempdir().unwrap();
        let (busy, idle) = (cache_mounts_dir(root.path()).join("busy"), cache_mounts_dir(root.path()).join("idle"));
        for dir in [&busy, &idle] {
            fs::create_dir_all(dir.join("sub")).unwrap();
            fs::write(dir.join("sub/f"), "12345").unwrap();
        }
        fs::create_dir_all(context_hashes_dir(root.path())).unwrap();
        fs::write(context_hashes_dir(root.path()).join("r"), "123").unwrap();
        let held = lock_dir(&busy, false, false).unwrap();
        let pruned = prune(root.path()).unwrap();
        assert_eq!(pruned.cache_mounts, std::slice::from_ref(&idle));
        assert_eq!(pruned.context_records.len(), 1);
        assert_eq!(pruned.reclaimed, 8);
        assert!(busy.join("sub/f").exists() && !idle.exists());
        drop(held);
        assert_eq!(prune(root.path()).unwrap().cache_mounts, [busy]);
        assert!(prune(root.path()).unwrap().cache_mounts.is_empty(), "nothing left, and no error");
    }
}
