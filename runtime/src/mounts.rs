//! Turning containerd-style mounts (`fs_type`, `source`, `options`) into mount(2) calls, and resolving paths
//! inside a rootfs without following its symlinks out of it.

use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sys::statvfs::{FsFlags, statvfs};
use strata_snapshotter::mount::Mount;

use crate::error::{Context, Result};

/// mount(2) flags and the filesystem-specific data string, split out of a mount's options.
#[derive(Debug, PartialEq, Eq)]
struct MountArgs {
    flags: MsFlags,
    propagation: MsFlags,
    data: Vec<String>,
}

fn parse_options(options: &[String]) -> MountArgs {
    let mut args = MountArgs { flags: MsFlags::empty(), propagation: MsFlags::empty(), data: Vec::new() };
    for option in options {
        let (set, clear) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {
                let recursive = if option.starts_with('r') { MsFlags::MS_REC } else { MsFlags::empty() };
                args.propagation = recursive
                    | match option.trim_start_matches('r') {
                        "private" => MsFlags::MS_PRIVATE,
                        "slave" => MsFlags::MS_SLAVE,
                        _ => MsFlags::MS_SHARED,
                    };
                continue;
            }
            _ => {
                args.data.push(option.clone());
                continue;
            }
        };
        args.flags = (args.flags | set) - clear;
    }
    args
}

/// Mounts `mount` at `target` (which must exist). Binds honour `ro` and friends through a remount, because
/// the kernel ignores them on the bind itself.
pub(crate) fn mount_at(spec: &Mount, target: &Path) -> Result<()> {
    let mut args = parse_options(&spec.options);
    let what = || format!("mounting {} ({}) at {}", spec.source.display(), spec.fs_type, target.display());
    if spec.fs_type == "bind" {
        args.flags |= MsFlags::MS_BIND;
    }
    if args.flags.contains(MsFlags::MS_BIND) {
        let bind = args.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
        mount(Some(&spec.source), target, None::<&str>, bind, None::<&str>).context(what)?;
        let extra = args.flags - bind;
        if !extra.is_empty() {
            remount_bind(target, extra)?;
        }
    } else {
        let data = args.data.join(",");
        let data = (!data.is_empty()).then_some(data.as_str());
        mount(Some(&spec.source), target, Some(spec.fs_type.as_str()), args.flags, data).context(what)?;
    }
    if !args.propagation.is_empty() {
        set_propagation(target, args.propagation)?;
    }
    Ok(())
}

/// Applies per-mount flags to the bind mount at `target`. Flags the kernel locked on the source (nosuid, nodev,
/// noexec in a user namespace) are kept, or the remount fails with EPERM.
pub(crate) fn remount_bind(target: &Path, flags: MsFlags) -> Result<()> {
    let locked = statvfs(target).context(|| format!("reading the mount flags of {}", target.display()))?.flags();
    let mut keep = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if locked.contains(fs) {
            keep |= ms;
        }
    }
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags | keep;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .context(|| format!("remounting {} with {flags:?}", target.display()))
}

/// Sets mount propagation (`MS_SLAVE`, `MS_PRIVATE`, ... possibly with `MS_REC`) of the mount at `target`.
pub(crate) fn set_propagation(target: &Path, propagation: MsFlags) -> Result<()> {
    mount(None::<&str>, target, None::<&str>, propagation, None::<&str>)
        .context(|| format!("setting mount propagation {propagation:?} on {}", target.display()))
}

/// Joins `path` to `root` resolving every symlink as if `root` were `/`, so an image's `/etc -> /host/etc`
/// cannot make the runtime mount over host paths. The result may not exist yet.
pub(crate) fn resolve_in_root(root: &Path, path: &Path) -> PathBuf {
    root.join(resolve_path(path, |relative| std::fs::read_link(root.join(relative)).ok()))
}

/// Resolves `path` to a relative path free of symlinks, `..` and `.`, never above the root; `read_link` says
/// where the symlink at a relative path points, if there is one.
pub(crate) fn resolve_path(path: &Path, read_link: impl Fn(&Path) -> Option<PathBuf>) -> PathBuf {
    const MAX_SYMLINKS: usize = 40;
    let mut resolved = PathBuf::new();
    let mut pending: Vec<PathBuf> = path.components().rev().map(|c| PathBuf::from(c.as_os_str())).collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.components().next() {
            None | Some(Component::RootDir | Component::CurDir | Component::Prefix(_)) => continue,
            Some(Component::ParentDir) => {
                resolved.pop();
                continue;
            }
            Some(Component::Normal(_)) => {}
        }
        let candidate = resolved.join(&part);
        match read_link(&candidate) {
            Some(target) if links < MAX_SYMLINKS => {
                links += 1;
                if target.is_absolute() {
                    resolved.clear();
                }
                pending.extend(target.components().rev().map(|c| PathBuf::from(c.as_os_str())));
            }
            _ => resolved = candidate,
        }
    }
    resolved
}

/// What a mount point must be: a directory, or a file for binds of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountPointKind {
    Directory,
    File,
}

impl MountPointKind {
    /// A file for binds whose source is not a directory, a directory otherwise.
    pub(crate) fn of(mount: &Mount) -> Self {
        if is_bind(mount) && !mount.source.is_dir() { Self::File } else { Self::Directory }
    }
}

/// Whether `mount` binds its source rather than mounting a filesystem.
pub(crate) fn is_bind(mount: &Mount) -> bool {
    mount.fs_type == "bind" || mount.options.iter().any(|o| o == "bind" || o == "rbind")
}

/// Creates the mount point `path` (and its parents) when missing.
pub(crate) fn create_mount_point(path: &Path, kind: MountPointKind) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        return Ok(());
    }
    let what = || format!("creating the mount point {}", path.display());
    match kind {
        MountPointKind::Directory => std::fs::create_dir_all(path).context(what),
        MountPointKind::File => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).context(what)?;
            }
            std::fs::File::create(path).map(drop).context(what)
        }
    }
}

/// Mounts a fresh kernel or memory filesystem (`proc`, `sysfs`, `tmpfs`, `mqueue`) at `target`, creating it
/// when missing; always nosuid, nodev and noexec, plus `extra` flags.
pub(crate) fn mount_pseudo_fs(target: &Path, fs_type: &str, extra: MsFlags, data: &str) -> Result<()> {
    create_mount_point(target, MountPointKind::Directory)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | extra;
    let data = (!data.is_empty()).then_some(data);
    mount(Some(fs_type), target, Some(fs_type), flags, data)
        .context(|| format!("mounting {fs_type} at {}", target.display()))
}

/// Creates `link -> target` unless something is already at `link`.
pub(crate) fn create_symlink(target: &str, link: &Path) -> Result<()> {
    match symlink(target, link) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).context(|| format!("linking {} to {target}", link.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let args = parse_options(&options(&["ro", "lowerdir=/a:/b", "nosuid", "upperdir=/u", "rslave"]));
        assert_eq!(args.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(args.propagation, MsFlags::MS_REC | MsFlags::MS_SLAVE);
        assert_eq!(args.data, ["lowerdir=/a:/b", "upperdir=/u"]);
        assert_eq!(parse_options(&options(&["ro", "rw", "rbind"])).flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        std::fs::create_dir_all(root.join("private/etc")).unwrap();
        symlink("/private/etc", root.join("etc")).unwrap();
        symlink("../../../../outside", root.join("private/escape")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(resolve_in_root(root, Path::new("/etc/hosts")), root.join("private/etc/hosts"));
        assert_eq!(resolve_in_root(root, Path::new("/private/escape/x")), root.join("outside/x"));
        assert_eq!(resolve_in_root(root, Path::new("/../../tmp")), root.join("tmp"));
        assert_eq!(resolve_in_root(root, Path::new("/loop")), root.join("loop"));
    }
}
