//! Local sources: a context directory filtered by its exclude patterns, hashed for cache keys (in parallel,
//! remembering file digests between solves) and copied into a snapshot. Files from the context belong to root
//! in the build, as in BuildKit.

mod hash;
mod record;

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use strata_llb::patterns::PatternMatcher;
use strata_snapshotter::Snapshotter;

use crate::error::{Error, IoContext, Result};
use crate::file::{HardLinks, expand_sources, set_mtime};
use crate::snapshot::ActiveTree;

pub(crate) use hash::{Checksum, Selection};
use record::Memo;

/// The files of a context that a local source selects.
pub(crate) struct ContextFilter {
    exclude: PatternMatcher,
    include: Option<PatternMatcher>,
    /// Device and inode of a directory never walked: strata's own state directory when it lies inside a
    /// context, whose snapshots would otherwise be copied into themselves without end.
    skip: Option<(u64, u64)>,
}

impl ContextFilter {
    /// A filter from a local source's patterns; an empty `include` selects everything.
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        let compile = |patterns: &[String]| {
            PatternMatcher::new(patterns).map_err(|e| Error::Invalid {
                what: "context pattern",
                value: e.pattern.clone(),
                reason: e.reason.clone(),
            })
        };
        let include = if include.is_empty() { None } else { Some(compile(include)?) };
        Ok(Self { exclude: compile(exclude)?, include, skip: None })
    }

    /// Leaves the directory `dir` (if it exists) and everything below it out of every walk.
    pub(crate) fn skipping(mut self, dir: &Path) -> Self {
        self.skip = fs::metadata(dir).ok().map(|meta| (meta.dev(), meta.ino()));
        self
    }

    /// Whether the walk passes this entry by altogether.
    fn skipped(&self, meta: &Metadata) -> bool {
        meta.is_dir() && self.skip == Some((meta.dev(), meta.ino()))
    }

    /// Whether the relative path is left out of the context.
    fn excluded(&self, rel: &str) -> bool {
        self.exclude.matches(rel) || self.include.as_ref().is_some_and(|i| !i.matches(rel) && !is_prefix_of_any(i, rel))
    }

    /// Whether an excluded directory may still hold included paths, so the walk must go into it.
    fn may_reinclude(&self) -> bool {
        self.exclude.has_exclusions() || self.include.is_some()
    }
}

/// Include patterns name files deep down; their parent directories must be walked.
fn is_prefix_of_any(include: &PatternMatcher, rel: &str) -> bool {
    include.patterns().iter().any(|p| p.starts_with(&format!("{rel}/")))
}

/// Calls `visit` for every selected entry below `dir` (relative path from the context root `root`), in name
/// order, parents before children.
pub(crate) fn walk(
    root: &Path,
    dir: &Path,
    filter: &ContextFilter,
    visit: &mut dyn FnMut(&str, &Path, &Metadata) -> Result<()>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .io_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .io_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(root).expect("walk stays below root").to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(&path).io_context(|| format!("reading {}", path.display()))?;
        if filter.skipped(&meta) {
            continue;
        }
        let excluded = filter.excluded(&rel);
        if !excluded {
            visit(&rel, &path, &meta)?;
        }
        if meta.is_dir() && (!excluded || filter.may_reinclude()) {
            walk(root, &path, filter, visit)?;
        }
    }
    Ok(())
}

/// The context checksums of one solve. Each context directory's file digests are loaded once from its record
/// under the state root, shared by the context's source node and every COPY from it (so no file is read twice
/// in a solve), and saved for the next solve, which then reads only files whose stat changed.
pub(crate) struct ContextHashes {
    records: PathBuf,
    memos: Mutex<HashMap<PathBuf, Arc<Memo>>>,
}

impl ContextHashes {
    /// Checksums keeping their records in `<state_root>/context-hashes`.
    pub(crate) fn new(state_root: &Path) -> Self {
        Self { records: crate::state::context_hashes_dir(state_root), memos: Mutex::default() }
    }

    /// The checksum of the whole filtered context at `dir`.
    pub(crate) fn checksum(&self, dir: &Path, filter: &ContextFilter) -> Result<Checksum> {
        let mut selection = Selection::default();
        selection.walk(dir, dir, filter)?;
        self.finish(dir, selection)
    }

    /// The checksum of exactly what `sources` (COPY sources, maybe wildcards) select from the filtered context
    /// at `dir`, so that changing an unrelated file keeps the step cached.
    pub(crate) fn checksum_selection(
        &self,
        dir: &Path,
        filter: &ContextFilter,
        sources: &[String],
    ) -> Result<Checksum> {
        let mut selection = Selection::default();
        for source in sources {
            selection.label(source.as_bytes());
            for path in expand_sources(dir, source, true)? {
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
                if rel.is_empty() {
                    selection.walk(dir, dir, filter)?;
                    continue;
                }
                if filter.excluded(&rel) {
                    continue;
                }
                let meta = fs::symlink_metadata(&path).io_context(|| format!("reading {}", path.display()))?;
                if filter.skipped(&meta) {
                    continue;
                }
                selection.entry(&rel, &path, &meta);
                if meta.is_dir() {
                    selection.walk(dir, &path, filter)?;
                }
            }
        }
        self.finish(dir, selection)
    }

    /// Hashes `selection` with the memo of the context at `dir`, then saves what was learnt.
    fn finish(&self, dir: &Path, selection: Selection) -> Result<Checksum> {
        let memo = self.memo(dir)?;
        let checksum = selection.checksum(Some(&memo))?;
        tracing::debug!(
            "context {}: read {} files ({} bytes) for its checksum",
            dir.display(),
            checksum.files_read,
            checksum.bytes_read
        );
        if checksum.files_read > 0
            && let Err(e) = memo.save()
        {
            // The record only saves reading next time; the build goes on without it.
            tracing::warn!("context {}: {e}", dir.display());
        }
        Ok(checksum)
    }

    /// The memo of the context at `dir`, loaded from its record on first use. Records are named by the blake3
    /// of the canonical path, so every name a directory is given shares one.
    fn memo(&self, dir: &Path) -> Result<Arc<Memo>> {
        let dir = fs::canonicalize(dir).io_context(|| format!("resolving the context {}", dir.display()))?;
        let mut memos = self.memos.lock().unwrap_or_else(|e| e.into_inner());
        let memo = memos.entry(dir).or_insert_with_key(|dir| {
            let name = blake3::hash(dir.as_os_str().as_encoded_bytes()).to_hex();
            Arc::new(Memo::load(self.records.join(name.as_str())))
        });
        Ok(memo.clone())
    }
}

/// A new snapshot holding the filtered context at `dir`.
pub(crate) fn solve(snapshotter: &Arc<dyn Snapshotter>, dir: &Path, filter: &ContextFilter) -> Result<ActiveTree> {
    let mut active = ActiveTree::prepare(snapshotter, None)?;
    let dest = active.mount()?;
    materialise(dir, filter, &dest)?;
    Ok(active)
}

/// Copies the filtered context into `dest` (an empty snapshot tree), owned by root, modes and mtimes kept.
fn materialise(root: &Path, filter: &ContextFilter, dest: &Path) -> Result<()> {
    let links = HardLinks::default();
    walk(root, root, filter, &mut |rel, path, meta| {
        let target = dest.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).io_context(|| format!("creating {}", parent.display()))?;
        }
        if links.link(meta, &target)? {
            return Ok(());
        }
        if meta.is_dir() {
            fs::create_dir_all(&target).io_context(|| format!("creating {}", target.display()))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .io_context(|| format!("setting the mode of {}", target.display()))?;
        } else if meta.is_symlink() {
            let link = fs::read_link(path).io_context(|| format!("reading the link {}", path.display()))?;
            std::os::unix::fs::symlink(&link, &target).io_context(|| format!("creating {}", target.display()))?;
        } else if meta.is_file() {
            fs::copy(path, &target).io_context(|| format!("copying {} to {}", path.display(), target.display()))?;
        } else {
            // Sockets, fifos and devices are not part of a build context.
            return Ok(());
        }
        std::os::unix::fs::lchown(&target, Some(0), Some(0))
            .io_context(|| format!("changing the owner of {}", target.display()))?;
        if !meta.is_symlink() {
            set_mtime(&target, meta)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// Waits until files written now are no longer racy, so their digests may be remembered.
    fn settle() {
        std::thread::sleep(Duration::from_millis(1100));
    }

    /// A context of a few files, and the state root of a solver.
    fn context() -> (tempfile::TempDir, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "1").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/b"), "22").unwrap();
        fs::write(dir.path().join("sub/c"), "333").unwrap();
        (dir, tempfile::tempdir().unwrap())
    }

    fn all() -> ContextFilter {
        ContextFilter::new(&[], &[]).unwrap()
    }

    #[test]
    fn checksums_follow_contents_and_patterns_not_times() {
        let (dir, state) = context();
        fs::create_dir(dir.path().join("logs")).unwrap();
        fs::write(dir.path().join("logs/x.log"), "x").unwrap();
        let hashes = || ContextHashes::new(state.path());
        let no_logs = ContextFilter::new(&[], &["logs".into()]).unwrap();
        let before = hashes().checksum(dir.path(), &no_logs).unwrap().digest;
        fs::write(dir.path().join("logs/x.log"), "changed").unwrap();
        assert_eq!(hashes().checksum(dir.path(), &no_logs).unwrap().digest, before, "excluded files do not count");
        let file = fs::File::options().write(true).open(dir.path().join("a")).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(hashes().checksum(dir.path(), &no_logs).unwrap().digest, before, "times do not count");
        let selected = hashes().checksum_selection(dir.path(), &all(), &["a".into()]).unwrap().digest;
        fs::write(dir.path().join("a"), "2").unwrap();
        assert_ne!(hashes().checksum(dir.path(), &no_logs).unwrap().digest, before);
        assert_ne!(hashes().checksum_selection(dir.path(), &all(), &["a".into()]).unwrap().digest, selected);
    }

    #[test]
    fn a_skipped_state_directory_inside_the_context_is_never_walked() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "1").unwrap();
        fs::create_dir_all(dir.path().join("state/snapshots")).unwrap();
        let filter = ContextFilter::new(&[], &[]).unwrap().skipping(&dir.path().join("state"));
        let mut seen = Vec::new();
        walk(dir.path(), dir.path(), &filter, &mut |rel, _, _| {
            seen.push(rel.to_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["a"]);
        let hashes = ContextHashes::new(&dir.path().join("state"));
        let before = hashes.checksum_selection(dir.path(), &filter, &["state".into()]).unwrap();
        fs::write(dir.path().join("state/snapshots/new"), "x").unwrap();
        assert_eq!(hashes.checksum_selection(dir.path(), &filter, &["state".into()]).unwrap().digest, before.digest);
    }

    #[test]
    fn an_unchanged_context_is_read_once_per_solve_and_then_never_again() {
        let (dir, state) = context();
        settle();
        let first = ContextHashes::new(state.path());
        let sum = first.checksum(dir.path(), &all()).unwrap();
        assert_eq!((sum.files_read, sum.bytes_read), (3, 6));
        let copy = first.checksum_selection(dir.path(), &all(), &["sub".into()]).unwrap();
        assert_eq!(copy.files_read, 0, "a COPY after the context source reads nothing");
        let second = ContextHashes::new(state.path());
        let again = second.checksum(dir.path(), &all()).unwrap();
        assert_eq!(again, Checksum { files_read: 0, bytes_read: 0, ..sum }, "the next solve reads nothing");
        assert_eq!(second.checksum_selection(dir.path(), &all(), &["sub".into()]).unwrap(), copy);
        fs::write(dir.path().join("sub/c"), "4444").unwrap();
        let changed = ContextHashes::new(state.path()).checksum(dir.path(), &all()).unwrap();
        assert_eq!((changed.files_read, changed.bytes_read), (1, 4), "only the changed file is read");
        assert_ne!(changed.digest, sum.digest);
    }

    #[test]
    fn a_change_keeping_size_and_mtime_is_still_seen() {
        let (dir, state) = context();
        let path = dir.path().join("sub/b");
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        settle();
        let hashes = ContextHashes::new(state.path());
        let before = hashes.checksum(dir.path(), &all()).unwrap();
        fs::write(&path, "33").unwrap();
        fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        let same_solve = hashes.checksum(dir.path(), &all()).unwrap();
        assert_eq!(same_solve.files_read, 1);
        assert_ne!(same_solve.digest, before.digest);
        let next_solve = ContextHashes::new(state.path()).checksum(dir.path(), &all()).unwrap();
        assert_eq!(next_solve.digest, same_solve.digest);
        assert_eq!(next_solve.files_read, 1, "changed a moment ago, so racy: read again");
    }

    #[test]
    fn files_changed_just_before_hashing_are_read_again_next_time() {
        let (dir, state) = context();
        let first = ContextHashes::new(state.path()).checksum(dir.path(), &all()).unwrap();
        assert_eq!(first.files_read, 3);
        let second = ContextHashes::new(state.path()).checksum(dir.path(), &all()).unwrap();
        assert_eq!(second.files_read, 3, "all three were written within a second of being hashed");
        settle();
        let third = ContextHashes::new(state.path()).checksum(dir.path(), &all()).unwrap();
        assert_eq!(third.files_read, 3);
        assert_eq!(ContextHashes::new(state.path()).checksum(dir.path(), &all()).unwrap().files_read, 0);
        assert!(first.digest == second.digest && second.digest == third.digest);
    }

    #[test]
    fn a_damaged_record_is_ignored_not_trusted() {
        let (dir, state) = context();
        settle();
        let hashes = ContextHashes::new(state.path());
        let sum = hashes.checksum(dir.path(), &all()).unwrap();
        let record = hashes.memo(dir.path()).unwrap().record().to_owned();
        let bytes = fs::read(&record).unwrap();
        let damage: [fn(&mut Vec<u8>); 3] = [
            |b| b.truncate(b.len() / 2),
            |b| b.truncate(0),
            // A flipped bit inside a digest: believing it would give a wrong key.
            |b| *b.iter_mut().rev().nth(40).unwrap() ^= 1,
        ];
        for damage in damage {
            let mut damaged = bytes.clone();
            damage(&mut damaged);
            fs::write(&record, &damaged).unwrap();
            let again = ContextHashes::new(state.path()).checksum(dir.path(), &all()).unwrap();
            assert_eq!(again, sum, "every file is read again and the checksum is right");
        }
    }

    #[test]
    fn names_of_one_directory_share_a_record() {
        let (dir, state) = context();
        let hashes = ContextHashes::new(state.path());
        let linked = state.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &linked).unwrap();
        let record = hashes.memo(dir.path()).unwrap().record().to_owned();
        assert_eq!(hashes.memo(&linked).unwrap().record(), record);
        assert_eq!(hashes.memo(&dir.path().join("sub/..")).unwrap().record(), record);
        assert!(record.starts_with(state.path().join("context-hashes")));
    }

    #[test]
    fn a_context_keeps_its_hard_links() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::write(src.path().join("a"), "same").unwrap();
        fs::hard_link(src.path().join("a"), src.path().join("b")).unwrap();
        materialise(src.path(), &ContextFilter::new(&[], &[]).unwrap(), dst.path()).unwrap();
        let (a, b) = (fs::metadata(dst.path().join("a")).unwrap(), fs::metadata(dst.path().join("b")).unwrap());
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    }
}
