//! File ops: copy, mkdir, mkfile, rm and symlink on a mounted snapshot. Every path is resolved inside the
//! snapshot's root, following symlinks as the container would see them, so nothing is written outside it.

mod chmod;
mod copy;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use strata_llb::{Chown, FileAction, FileOp};
use strata_runtime::{lookup_group, lookup_user};
use strata_snapshotter::Snapshotter;

use crate::error::{Error, IoContext, Result};
use crate::snapshot::{ActiveTree, ReadTree};

pub(crate) use copy::{copy, copy_tree};

/// Symlinks followed while resolving one path before giving up, as Linux's `ELOOP`.
const MAX_SYMLINKS: usize = 255;

/// Runs a file op: a new snapshot on its base with the actions applied, copy sources read from their inputs
/// (`inputs[i]` is input `i`'s snapshot, `None` for empty).
pub(crate) fn solve(snapshotter: &Arc<dyn Snapshotter>, op: &FileOp, inputs: &[Option<String>]) -> Result<ActiveTree> {
    let base = op.base.and_then(|i| inputs.get(i).cloned().flatten());
    let mut active = ActiveTree::prepare(snapshotter, base.as_deref())?;
    let dest = active.mount()?;
    // Only copy sources are read; opening the base too would mount it twice for nothing.
    let copied = |index: usize| op.actions.iter().any(|a| matches!(a, FileAction::Copy(c) if c.input == Some(index)));
    let trees = (0..inputs.len())
        .map(|i| copied(i).then(|| ReadTree::open(snapshotter, inputs[i].as_deref())).transpose())
        .collect::<Result<Vec<_>>>()?;
    let paths: Vec<_> = trees.iter().map(|t| t.as_ref().map(|t| t.path().to_owned())).collect();
    run(&op.actions, &dest, &paths)?;
    Ok(active)
}

/// Runs `actions` on the tree at `dest`; `inputs[i]` is where input `i` is readable (for copies).
fn run(actions: &[FileAction], dest: &Path, inputs: &[Option<PathBuf>]) -> Result<()> {
    for action in actions {
        match action {
            FileAction::Copy(copy_action) => {
                let empty;
                let source = match copy_action.input.and_then(|i| inputs.get(i).cloned().flatten()) {
                    Some(path) => path,
                    None => {
                        empty = tempfile::tempdir().io_context(|| "creating an empty copy source".to_owned())?;
                        empty.path().to_owned()
                    }
                };
                copy(copy_action, &source, dest)?;
            }
            FileAction::Mkdir { path, mode, make_parents, chown } => {
                let target = resolve_in_root(dest, path, true)?;
                if *make_parents && target.is_dir() {
                    // An existing directory keeps its owner and mode (WORKDIR over a chowned directory).
                    continue;
                }
                let made = if *make_parents { fs::create_dir_all(&target) } else { fs::create_dir(&target) };
                made.io_context(|| format!("mkdir {path}"))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .io_context(|| format!("setting the mode of {path}"))?;
                apply_owner(dest, &target, chown.as_ref())?;
            }
            FileAction::Mkfile { path, mode, data, chown } => {
                let target = resolve_in_root(dest, path, false)?;
                remove_any(&target)?;
                fs::write(&target, data).io_context(|| format!("writing {path}"))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .io_context(|| format!("setting the mode of {path}"))?;
                apply_owner(dest, &target, chown.as_ref())?;
            }
            FileAction::Rm { path, allow_not_found, allow_wildcard } => {
                let matches = expand_sources(dest, path, *allow_wildcard)?;
                if matches.is_empty() && !allow_not_found {
                    return Err(Error::SourceNotFound { path: path.clone() });
                }
                for target in matches {
                    remove_any(&target)?;
                }
            }
            FileAction::Symlink { target, link } => {
                let at = resolve_in_root(dest, link, false)?;
                std::os::unix::fs::symlink(target, &at).io_context(|| format!("symlinking {link} to {target}"))?;
            }
        }
    }
    Ok(())
}

/// The host path of `path` (absolute or relative to `/`) inside `root`, with `..` and symlinks resolved as a
/// chroot would; the last component is followed only if `follow_last`.
pub(crate) fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: Vec<OsString> = Path::new(path).components().rev().filter_map(component_name).collect();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = std::iter::once(root.as_os_str().to_owned())
            .chain(resolved.iter().cloned())
            .chain([name.clone()])
            .collect();
        let is_last = pending.is_empty();
        let link = match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.is_symlink() && (!is_last || follow_last) => {
                fs::read_link(&candidate).io_context(|| format!("reading the link {}", candidate.display()))?
            }
            _ => {
                resolved.push(name);
                continue;
            }
        };
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(Error::Invalid { what: "path", value: path.to_owned(), reason: "too many symlinks".into() });
        }
        if link.is_absolute() {
            resolved.clear();
        }
        pending.extend(link.components().rev().filter_map(component_name));
    }
    Ok(std::iter::once(root.as_os_str().to_owned()).chain(resolved).collect())
}

/// A path component as a name to resolve: `..` kept, `/` and `.` dropped.
fn component_name(component: Component<'_>) -> Option<OsString> {
    match component {
        Component::Normal(name) => Some(name.to_owned()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    }
}

/// Whether a source is a wildcard pattern.
pub(crate) fn has_wildcard(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The existing host paths inside `root` that `source` names: itself, or its wildcard matches in name order.
pub(crate) fn expand_sources(root: &Path, source: &str, allow_wildcard: bool) -> Result<Vec<PathBuf>> {
    if !allow_wildcard || !has_wildcard(source) {
        let path = resolve_in_root(root, source, false)?;
        return Ok(if fs::symlink_metadata(&path).is_ok() { vec![path] } else { Vec::new() });
    }
    let mut candidates = vec![String::new()];
    for part in source.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let mut next = Vec::new();
        for base in &candidates {
            if part == "**" {
                // Any number of directories, none included.
                next.push(base.clone());
                descendants(&resolve_in_root(root, base, true)?, base, &mut next);
                continue;
            }
            if !has_wildcard(part) {
                next.push(format!("{base}/{part}"));
                continue;
            }
            let glob = globset::Glob::new(part)
                .map_err(|e| Error::Invalid { what: "wildcard", value: source.to_owned(), reason: e.to_string() })?
                .compile_matcher();
            let dir = resolve_in_root(root, base, true)?;
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            let mut names: Vec<String> =
                entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            next.extend(names.into_iter().filter(|n| glob.is_match(n)).map(|n| format!("{base}/{n}")));
        }
        candidates = next;
    }
    let mut found = Vec::new();
    for candidate in candidates {
        let path = resolve_in_root(root, &candidate, false)?;
        if fs::symlink_metadata(&path).is_ok() {
            found.push(path);
        }
    }
    Ok(found)
}

/// Appends every path below the directory `dir` (named `name` inside the root) to `out`, in name order.
fn descendants(dir: &Path, name: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let child = format!("{name}/{}", entry.file_name().to_string_lossy());
        out.push(child.clone());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            descendants(&entry.path(), &child, out);
        }
    }
}

/// Files with several links met by one copy: their later names become links to the first copy, as BuildKit's
/// copier keeps hard links (a busybox tree stays one binary, not hundreds of copies of it).
#[derive(Default)]
pub(crate) struct HardLinks(RefCell<HashMap<(u64, u64), PathBuf>>);

impl HardLinks {
    /// Links `dst` to the earlier copy of the source inode `meta` describes and returns true; otherwise
    /// remembers `dst` as that inode's copy, which the caller makes, and returns false.
    pub(crate) fn link(&self, meta: &Metadata, dst: &Path) -> Result<bool> {
        if !meta.is_file() || meta.nlink() < 2 {
            return Ok(false);
        }
        let mut seen = self.0.borrow_mut();
        match seen.get(&(meta.dev(), meta.ino())) {
            Some(first) => {
                fs::hard_link(first, dst).io_context(|| format!("linking {} to {}", dst.display(), first.display()))?;
                Ok(true)
            }
            None => {
                seen.insert((meta.dev(), meta.ino()), dst.to_owned());
                Ok(false)
            }
        }
    }
}

/// Sets the mtime of `path` to the one in `meta`.
pub(crate) fn set_mtime(path: &Path, meta: &Metadata) -> Result<()> {
    let modified = meta.modified().io_context(|| format!("reading the mtime for {}", path.display()))?;
    fs::File::open(path)
        .and_then(|f| f.set_times(fs::FileTimes::new().set_modified(modified)))
        .io_context(|| format!("setting the mtime of {}", path.display()))
}

/// Removes whatever is at `path` (nothing there is fine).
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    removed.io_context(|| format!("removing {}", path.display()))
}

/// Chowns `path` (not following a link) to `chown` resolved against the tree at `root`.
fn apply_owner(root: &Path, path: &Path, chown: Option<&Chown>) -> Result<()> {
    let Some(chown) = chown else { return Ok(()) };
    let (uid, gid) = resolve_owner(root, chown)?;
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .io_context(|| format!("changing the owner of {}", path.display()))
}

/// `--chown` as numeric ids: names are looked up in the destination's `/etc/passwd` and `/etc/group`; a user
/// without a group gets their primary group (numeric users: the same number, as BuildKit does).
pub(crate) fn resolve_owner(root: &Path, chown: &Chown) -> Result<(u32, u32)> {
    let unknown = |kind: &'static str, name: &str, file: &str| Error::UnknownOwner {
        kind,
        name: name.to_owned(),
        file: PathBuf::from(file),
    };
    let (uid, primary_gid) = match chown.user.parse::<u32>() {
        Ok(uid) => (uid, uid),
        Err(_) => lookup_user(&read_in_root(root, "/etc/passwd")?, &chown.user)
            .ok_or_else(|| unknown("user", &chown.user, "/etc/passwd"))?,
    };
    let gid = match chown.group.as_deref() {
        None => primary_gid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup_group(&read_in_root(root, "/etc/group")?, group)
                .ok_or_else(|| unknown("group", group, "/etc/group"))?,
        },
    };
    Ok((uid, gid))
}

/// The text of `file` in the tree at `root` (resolved inside it); empty when it does not exist.
fn read_in_root(root: &Path, file: &str) -> Result<String> {
    Ok(fs::read_to_string(resolve_in_root(root, file, true)?).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_never_leaves_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir(r.join("etc")).unwrap();
        std::os::unix::fs::symlink("/", r.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../etc", r.join("etc/escape")).unwrap();
        assert_eq!(resolve_in_root(r, "/../../x", true).unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "up/up/etc/passwd", true).unwrap(), r.join("etc/passwd"));
        assert_eq!(resolve_in_root(r, "etc/escape/passwd", true).unwrap(), r.join("etc/passwd"));
        assert_eq!(resolve_in_root(r, "etc/escape", false).unwrap(), r.join("etc/escape"));
    }

    #[test]
    fn wildcards_expand_in_name_order_and_owners_resolve_by_name() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        for name in ["b.txt", "a.txt", "c.md"] {
            fs::write(r.join(name), "").unwrap();
        }
        let found = expand_sources(r, "/*.txt", true).unwrap();
        assert_eq!(found, vec![r.join("a.txt"), r.join("b.txt")]);
        fs::create_dir_all(r.join("x/y")).unwrap();
        fs::write(r.join("x/y/deep.txt"), "").unwrap();
        assert_eq!(expand_sources(r, "/**/*.txt", true).unwrap().len(), 3, "** spans zero or more directories");
        assert!(expand_sources(r, "*.txt", false).unwrap().is_empty());
        fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n").unwrap();
        fs::write(r.join("etc/group"), "root:x:0:\nwheel:x:10:root\n").unwrap();
        let owner = |user: &str, group: Option<&str>| {
            resolve_owner(r, &Chown { user: user.into(), group: group.map(Into::into) })
        };
        assert_eq!(owner("daemon", None).unwrap(), (1, 1));
        assert_eq!(owner("daemon", Some("wheel")).unwrap(), (1, 10));
        assert_eq!(owner("1000", None).unwrap(), (1000, 1000));
        assert!(owner("nobody", None).unwrap_err().to_string().contains("unable to find user \"nobody\""));
    }
}
