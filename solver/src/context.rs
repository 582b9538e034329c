//! Local sources: a context directory filtered by its exclude patterns, hashed for cache keys and copied
//! into a snapshot. Files from the context belong to root in the build, as in BuildKit.

use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use strata_llb::patterns::PatternMatcher;
use strata_snapshotter::Snapshotter;

use crate::error::{Error, IoContext, Result};
use crate::file::{expand_sources, set_mtime};
use crate::snapshot::ActiveTree;

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

/// Feeds one entry into a cache-key hash: path, type, mode, owner, link target and contents; never times.
pub(crate) fn hash_entry(hasher: &mut blake3::Hasher, rel: &str, path: &Path, meta: &Metadata) -> Result<()> {
    hasher.update(&(rel.len() as u64).to_le_bytes());
    hasher.update(rel.as_bytes());
    hasher.update(&meta.mode().to_le_bytes());
    hasher.update(&meta.uid().to_le_bytes());
    hasher.update(&meta.gid().to_le_bytes());
    if meta.is_symlink() {
        let target = fs::read_link(path).io_context(|| format!("reading the link {}", path.display()))?;
        hasher.update(target.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        hasher.update(&meta.len().to_le_bytes());
        let mut file = fs::File::open(path).io_context(|| format!("opening {}", path.display()))?;
        std::io::copy(&mut file, hasher).io_context(|| format!("hashing {}", path.display()))?;
    }
    Ok(())
}

/// The checksum of the whole filtered context.
pub(crate) fn checksum(root: &Path, filter: &ContextFilter) -> Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    walk(root, root, filter, &mut |rel, path, meta| hash_entry(&mut hasher, rel, path, meta))?;
    Ok(*hasher.finalize().as_bytes())
}

/// The checksum of exactly what `sources` (COPY sources, maybe wildcards) select from the filtered context,
/// so that changing an unrelated file keeps the step cached.
pub(crate) fn checksum_selection(root: &Path, filter: &ContextFilter, sources: &[String]) -> Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    for source in sources {
        hasher.update(source.as_bytes());
        for path in expand_sources(root, source, true)? {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            if rel.is_empty() {
                walk(root, root, filter, &mut |rel, path, meta| hash_entry(&mut hasher, rel, path, meta))?;
                continue;
            }
            if filter.excluded(&rel) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).io_context(|| format!("reading {}", path.display()))?;
            if filter.skipped(&meta) {
                continue;
            }
            hash_entry(&mut hasher, &rel, &path, &meta)?;
            if meta.is_dir() {
                walk(root, &path, filter, &mut |rel, path, meta| hash_entry(&mut hasher, rel, path, meta))?;
            }
        }
    }
    Ok(*hasher.finalize().as_bytes())
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
    walk(root, root, filter, &mut |rel, path, meta| {
        let target = dest.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).io_context(|| format!("creating {}", parent.display()))?;
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

    #[test]
    fn checksums_follow_contents_and_patterns_not_times() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "1").unwrap();
        fs::create_dir(dir.path().join("logs")).unwrap();
        fs::write(dir.path().join("logs/x.log"), "x").unwrap();
        let all = ContextFilter::new(&[], &[]).unwrap();
        let no_logs = ContextFilter::new(&[], &["logs".into()]).unwrap();
        let before = checksum(dir.path(), &no_logs).unwrap();
        fs::write(dir.path().join("logs/x.log"), "changed").unwrap();
        assert_eq!(checksum(dir.path(), &no_logs).unwrap(), before, "excluded files do not count");
        let file = fs::File::options().write(true).open(dir.path().join("a")).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(checksum(dir.path(), &no_logs).unwrap(), before, "times do not count");
        let selected = checksum_selection(dir.path(), &all, &["a".into()]).unwrap();
        fs::write(dir.path().join("a"), "2").unwrap();
        assert_ne!(checksum(dir.path(), &no_logs).unwrap(), before);
        assert_ne!(checksum_selection(dir.path(), &all, &["a".into()]).unwrap(), selected);
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
        let before = checksum_selection(dir.path(), &filter, &["state".into()]).unwrap();
        fs::write(dir.path().join("state/snapshots/new"), "x").unwrap();
        assert_eq!(checksum_selection(dir.path(), &filter, &["state".into()]).unwrap(), before);
    }
}
