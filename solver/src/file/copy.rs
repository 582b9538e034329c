//! COPY and ADD with BuildKit's semantics: wildcards, a directory copies its contents, missing destination
//! parents are created, `--chown`/`--chmod`/`--exclude`/`--parents`, and ADD unpacks local archives.

use std::fs::{self, Metadata};
use std::io::{BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use strata_llb::CopyAction;
use strata_llb::patterns::PatternMatcher;

use super::chmod::Chmod;
use super::{HardLinks, expand_sources, has_wildcard, remove_any, resolve_in_root, resolve_owner, set_mtime};
use crate::error::{Error, IoContext, Result};

/// Copies everything in the tree at `source` onto the root of the tree at `dest`, owners and modes kept.
pub(crate) fn copy_tree(source: &Path, dest: &Path) -> Result<()> {
    let whole_tree = CopyAction {
        input: Some(0),
        sources: vec!["/".into()],
        dest: "/".into(),
        chown: None,
        chmod: None,
        parents: false,
        exclude: Vec::new(),
        unpack: false,
        follow_symlinks: false,
        dir_contents_only: true,
        allow_wildcard: false,
        allow_empty_wildcard: false,
        create_dest_path: true,
    };
    copy(&whole_tree, source, dest)
}

/// Copies what `action` selects from the tree at `source` into the tree at `dest`.
pub(crate) fn copy(action: &CopyAction, source: &Path, dest: &Path) -> Result<()> {
    let exclude = PatternMatcher::new(&action.exclude).map_err(|e| Error::Invalid {
        what: "--exclude pattern",
        value: e.pattern.clone(),
        reason: e.reason.clone(),
    })?;
    let options = Options {
        owner: action.chown.as_ref().map(|c| resolve_owner(dest, c)).transpose()?,
        mode: action.chmod.as_deref().map(Chmod::parse).transpose()?,
        exclude,
        links: HardLinks::default(),
    };
    let mut matches = Vec::new();
    for pattern in &action.sources {
        let found = expand_sources(source, pattern, action.allow_wildcard)?;
        let may_be_empty = action.allow_wildcard && action.allow_empty_wildcard && has_wildcard(pattern);
        if found.is_empty() && !may_be_empty {
            return Err(Error::SourceNotFound { path: pattern.clone() });
        }
        // `--parents` keeps the path below a `/./` pivot, or the whole path without one.
        // The pivot is a number of leading components, so wildcards before it work too.
        let pivot = match pattern.split_once("/./") {
            Some((dropped, _)) if action.parents => dropped.split('/').filter(|p| !p.is_empty() && *p != ".").count(),
            _ => 0,
        };
        matches.extend(found.into_iter().map(|f| (f, pivot)));
    }
    let dest_path = resolve_in_root(dest, &action.dest, true)?;
    let into_dir = action.dest.ends_with('/') || matches.len() > 1 || dest_path.is_dir();
    if matches.is_empty() && action.dest.ends_with('/') && !dest_path.is_dir() {
        // A wildcard that matched nothing still leaves the destination directory, as in BuildKit.
        make_parents(&dest_path, action.create_dest_path, &options)?;
        fs::create_dir(&dest_path).io_context(|| format!("creating {}", dest_path.display()))?;
    }
    for (found, pivot) in matches {
        // A followed symlink is copied under its own name, with its target's contents.
        let (name, rel) = (file_name(&found), relative(source, &found));
        let kept = rel.split('/').filter(|p| !p.is_empty()).skip(pivot).collect::<Vec<_>>().join("/");
        let found = if action.follow_symlinks { resolve_in_root(source, &rel, true)? } else { found };
        let meta = fs::symlink_metadata(&found).io_context(|| format!("reading {}", found.display()))?;
        let base = if action.parents {
            let parent = Path::new(&kept).parent().map(Path::to_owned).unwrap_or_default();
            resolve_in_root(dest, &format!("{}/{}", action.dest, parent.display()), true)?
        } else {
            dest_path.clone()
        };
        if meta.is_dir() && action.dir_contents_only {
            let target = if action.parents && !kept.is_empty() { base.join(&name) } else { base };
            make_parents(&target, action.create_dest_path, &options)?;
            copy_entry(&found, &target, &meta, "", &options)?;
            continue;
        }
        if action.unpack && meta.is_file() && is_archive(&found)? {
            if !base.is_dir() {
                fs::create_dir_all(&base).io_context(|| format!("creating {}", base.display()))?;
                if let Some((uid, gid)) = options.owner {
                    std::os::unix::fs::chown(&base, Some(uid), Some(gid))
                        .io_context(|| format!("changing the owner of {}", base.display()))?;
                }
            }
            unpack(&found, dest, &relative(dest, &base), options.owner)?;
            continue;
        }
        let target = if into_dir || action.parents { base.join(&name) } else { base };
        make_parents(&target, action.create_dest_path, &options)?;
        copy_entry(&found, &target, &meta, "", &options)?;
    }
    Ok(())
}

/// What applies to every copied entry.
struct Options {
    owner: Option<(u32, u32)>,
    mode: Option<Chmod>,
    exclude: PatternMatcher,
    links: HardLinks,
}

/// `found` relative to the tree root `root`, slash-separated, empty for the root itself.
fn relative(root: &Path, found: &Path) -> String {
    found.strip_prefix(root).unwrap_or(found).to_string_lossy().into_owned()
}

fn file_name(path: &Path) -> PathBuf {
    path.file_name().map(PathBuf::from).unwrap_or_default()
}

/// Creates the missing parents of `target` when allowed (BuildKit's COPY always may); as in BuildKit, they
/// get `--chmod`'s mode and `--chown`'s owner when those are given.
fn make_parents(target: &Path, allowed: bool, options: &Options) -> Result<()> {
    let Some(parent) = target.parent() else { return Ok(()) };
    if parent.is_dir() {
        return Ok(());
    }
    if !allowed {
        return Err(Error::SourceNotFound { path: parent.display().to_string() });
    }
    make_parents(parent, allowed, options)?;
    fs::create_dir(parent).io_context(|| format!("creating {}", parent.display()))?;
    if let Some(chmod) = &options.mode {
        let mode = chmod.apply(0o755, true);
        fs::set_permissions(parent, fs::Permissions::from_mode(mode))
            .io_context(|| format!("setting the mode of {}", parent.display()))?;
    }
    if let Some((uid, gid)) = options.owner {
        std::os::unix::fs::chown(parent, Some(uid), Some(gid))
            .io_context(|| format!("changing the owner of {}", parent.display()))?;
    }
    Ok(())
}

/// Copies `src` (with metadata `meta`) to `dst`, recursing into directories; `rel` is the path below the
/// copy's root that `--exclude` patterns match.
fn copy_entry(src: &Path, dst: &Path, meta: &Metadata, rel: &str, options: &Options) -> Result<()> {
    if !rel.is_empty() && options.exclude.matches(rel) && !options.exclude.has_exclusions() {
        return Ok(());
    }
    if meta.is_dir() {
        // A link where a directory goes is replaced, never followed out of the tree.
        if fs::symlink_metadata(dst).is_ok_and(|m| !m.is_dir()) {
            remove_any(dst)?;
        }
        let existed = dst.is_dir();
        if !existed {
            fs::create_dir(dst).io_context(|| format!("creating {}", dst.display()))?;
        }
        let mut entries: Vec<_> = fs::read_dir(src)
            .io_context(|| format!("reading {}", src.display()))?
            .collect::<std::io::Result<_>>()
            .io_context(|| format!("reading {}", src.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let child_meta = entry.metadata().io_context(|| format!("reading {}", entry.path().display()))?;
            let name = entry.file_name();
            let child_rel = if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            copy_entry(&entry.path(), &dst.join(&name), &child_meta, &child_rel, options)?;
        }
        if rel.is_empty() {
            // The directory copied into is the destination, not a copied entry: an existing one is left as it
            // is, a new one is made like a missing parent (owned by root or --chown), as BuildKit does.
            if existed {
                return Ok(());
            }
            let (uid, gid) = options.owner.unwrap_or((0, 0));
            return std::os::unix::fs::chown(dst, Some(uid), Some(gid))
                .io_context(|| format!("changing the owner of {}", dst.display()));
        }
    } else {
        if !rel.is_empty() && options.exclude.matches(rel) {
            return Ok(());
        }
        remove_any(dst)?;
        if options.links.link(meta, dst)? {
            // The first copy of the inode already has its owner, mode and mtime.
            return Ok(());
        }
        if meta.is_symlink() {
            let link = fs::read_link(src).io_context(|| format!("reading the link {}", src.display()))?;
            std::os::unix::fs::symlink(&link, dst).io_context(|| format!("creating {}", dst.display()))?;
        } else if meta.is_file() {
            fs::copy(src, dst).io_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        } else {
            // Device nodes, fifos and sockets are not copied by COPY either.
            return Ok(());
        }
    }
    let (uid, gid) = options.owner.unwrap_or((meta.uid(), meta.gid()));
    std::os::unix::fs::lchown(dst, Some(uid), Some(gid))
        .io_context(|| format!("changing the owner of {}", dst.display()))?;
    if meta.is_symlink() {
        return Ok(());
    }
    let mode = options.mode.as_ref().map_or(meta.mode() & 0o7777, |chmod| chmod.apply(meta.mode(), meta.is_dir()));
    fs::set_permissions(dst, fs::Permissions::from_mode(mode))
        .io_context(|| format!("setting the mode of {}", dst.display()))?;
    set_mtime(dst, meta)
}

/// Whether `path` is a tar archive, plain or gzip-compressed (what ADD unpacks).
fn is_archive(path: &Path) -> Result<bool> {
    let mut head = [0u8; 262];
    let mut file = fs::File::open(path).io_context(|| format!("opening {}", path.display()))?;
    let n = file.read(&mut head).io_context(|| format!("reading {}", path.display()))?;
    Ok(head[..n].starts_with(&[0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar"))
}

/// Extracts the archive at `path` into the directory `dir` (relative to the tree root `root`), every entry
/// owned by `owner` if given. Each entry's parent is resolved inside `root` as the container would see it, so
/// symlinks already in the tree (even absolute ones) are followed, but nothing lands outside the tree.
fn unpack(path: &Path, root: &Path, dir: &str, owner: Option<(u32, u32)>) -> Result<()> {
    let context = || format!("unpacking {} into /{dir}", path.display());
    let mut reader = BufReader::new(fs::File::open(path).io_context(|| format!("opening {}", path.display()))?);
    let gzip = std::io::BufRead::fill_buf(&mut reader).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]));
    let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(reader)) } else { Box::new(reader) };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_overwrite(true);
    for entry in archive.entries().io_context(context)? {
        let mut entry = entry.io_context(context)?;
        let name = entry.path().io_context(context)?.to_string_lossy().into_owned();
        let target = resolve_in_root(root, &format!("{dir}/{name}"), false)?;
        if target == root {
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).io_context(|| format!("creating {}", parent.display()))?;
        }
        if entry.header().entry_type().is_hard_link() {
            let link = entry.link_name().io_context(context)?.unwrap_or_default().to_string_lossy().into_owned();
            let original = resolve_in_root(root, &format!("{dir}/{link}"), false)?;
            remove_any(&target)?;
            fs::hard_link(&original, &target).io_context(|| format!("linking {} in {}", name, path.display()))?;
        } else {
            if !entry.header().entry_type().is_dir() {
                remove_any(&target)?;
            }
            entry.unpack(&target).io_context(|| format!("extracting {name} from {}", path.display()))?;
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                .io_context(|| format!("changing the owner of {}", target.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(sources: &[&str], dest: &str) -> CopyAction {
        CopyAction {
            input: Some(0),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            chown: None,
            chmod: None,
            parents: false,
            exclude: Vec::new(),
            unpack: false,
            follow_symlinks: true,
            dir_contents_only: true,
            allow_wildcard: true,
            allow_empty_wildcard: false,
            create_dest_path: true,
        }
    }

    #[test]
    fn copies_follow_docker_rules() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::create_dir_all(src.path().join("dir/sub")).unwrap();
        fs::write(src.path().join("dir/sub/f"), "f").unwrap();
        fs::write(src.path().join("dir/skip.log"), "x").unwrap();
        fs::write(src.path().join("a.txt"), "a").unwrap();
        fs::write(src.path().join("b.txt"), "b").unwrap();
        copy(&action(&["a.txt"], "/file"), src.path(), dst.path()).unwrap();
        assert_eq!(fs::read_to_string(dst.path().join("file")).unwrap(), "a");
        copy(&action(&["*.txt"], "/texts"), src.path(), dst.path()).unwrap();
        assert!(dst.path().join("texts/a.txt").is_file() && dst.path().join("texts/b.txt").is_file());
        let mut excluding = action(&["dir"], "/deep/copy/");
        excluding.exclude = vec!["*.log".into()];
        excluding.chmod = Some("700".into());
        copy(&excluding, src.path(), dst.path()).unwrap();
        assert_eq!(fs::read_to_string(dst.path().join("deep/copy/sub/f")).unwrap(), "f", "contents, not the dir");
        assert!(!dst.path().join("deep/copy/skip.log").exists());
        assert_eq!(fs::metadata(dst.path().join("deep/copy/sub/f")).unwrap().mode() & 0o777, 0o700);
        let err = copy(&action(&["missing"], "/x"), src.path(), dst.path()).unwrap_err();
        assert_eq!(err.to_string(), "failed to compute cache key: \"missing\": not found");
    }

    #[test]
    fn a_symlinked_destination_stays_inside_the_tree() {
        let (src, dst, outside) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::write(src.path().join("f"), "f").unwrap();
        std::os::unix::fs::symlink(outside.path(), dst.path().join("out")).unwrap();
        copy(&action(&["f"], "/out/"), src.path(), dst.path()).unwrap();
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none(), "wrote outside the snapshot");
        assert!(dst.path().join(outside.path().strip_prefix("/").unwrap()).join("f").is_file());
    }

    #[test]
    fn archives_unpack_through_symlinks_in_the_tree_but_never_out_of_it() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut builder = tar::Builder::new(Vec::new());
        for name in ["var/run/x", "up/../../escape"] {
            let mut header = tar::Header::new_gnu();
            header.set_size(1);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; the raw name field does not, as a hostile archive would not.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, &b"x"[..]).unwrap();
        }
        fs::write(src.path().join("a.tar"), builder.into_inner().unwrap()).unwrap();
        fs::create_dir_all(dst.path().join("var")).unwrap();
        fs::create_dir_all(dst.path().join("run")).unwrap();
        std::os::unix::fs::symlink("/run", dst.path().join("var/run")).unwrap();
        let mut add = action(&["a.tar"], "/");
        add.unpack = true;
        copy(&add, src.path(), dst.path()).unwrap();
        assert!(dst.path().join("run/x").is_file(), "the absolute link resolves inside the tree");
        assert!(dst.path().join("escape").is_file(), "`..` stops at the tree's root");
    }

    #[test]
    fn hard_links_within_a_copy_stay_links() {
        let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::create_dir(src.path().join("bin")).unwrap();
        fs::write(src.path().join("bin/busybox"), "binary").unwrap();
        for applet in ["sh", "ls"] {
            fs::hard_link(src.path().join("bin/busybox"), src.path().join("bin").join(applet)).unwrap();
        }
        copy(&action(&["bin"], "/usr/bin/"), src.path(), dst.path()).unwrap();
        let inode = |name: &str| fs::metadata(dst.path().join("usr/bin").join(name)).unwrap().ino();
        assert_eq!(inode("busybox"), inode("sh"));
        assert_eq!(inode("busybox"), inode("ls"));
        assert_eq!(fs::metadata(dst.path().join("usr/bin/sh")).unwrap().nlink(), 3, "no link to the source");
        assert_eq!(fs::read_to_string(dst.path().join("usr/bin/ls")).unwrap(), "binary");
    }
}
