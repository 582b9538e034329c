//! The container's filesystem tree: the rootfs mounted at a private path, the kernel filesystems, `/dev`, the
//! generated `/etc` files and the caller's mounts over it, then `pivot_root` into it.
//!
//! Mount points missing from the image (`/etc/hosts` is rarely in one) must exist before anything can be
//! mounted on them. Creating them in an overlay rootfs would leave them in the upper dir, i.e. in the next
//! layer, so for overlays they go into a small "skeleton" directory added as the topmost lower layer, and the
//! upper dir never sees them. A plain directory or bind rootfs has no layer to protect: there they are created
//! in place (in a bind's source, so a read-only view works too), as runc does, and stay.

use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, umount2};
use nix::unistd::{chdir, pivot_root};
use strata_snapshotter::mount::Mount;

use crate::devices::setup_dev;
use crate::error::{Context, Error, Result};
use crate::mounts::{
    MountPointKind, create_mount_point, is_bind, mount_at, mount_pseudo_fs, remount_bind, resolve_in_root,
    resolve_path, set_propagation,
};
use crate::spec::{Network, ProcessSpec, Rootfs};

/// Files the runtime writes into the state directory and binds read-only over `/etc`, as BuildKit does.
const ETC_FILES: [&str; 3] = ["hosts", "resolv.conf", "hostname"];

/// Docker's masked paths: hidden behind `/dev/null` (files) or an empty read-only tmpfs (directories).
const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths: kernel knobs the container may read but not turn.
const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Writes the `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` the container will see into `state_dir`.
pub(crate) fn write_etc_files(state_dir: &Path, spec: &ProcessSpec) -> Result<()> {
    let host_file = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let hosts = match spec.network {
        Network::Host => host_file("/etc/hosts"),
        Network::None => {
            format!("127.0.0.1\tlocalhost {0}\n::1\tlocalhost ip6-localhost ip6-loopback {0}\n", spec.hostname)
        }
    };
    let contents = [hosts, host_file("/etc/resolv.conf"), format!("{}\n", spec.hostname)];
    for (name, content) in ETC_FILES.iter().zip(contents) {
        let path = state_dir.join(name);
        std::fs::write(&path, content).context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Builds the container's tree under `state_dir/rootfs` and makes it `/`; the caller is in a new mount
/// namespace (and PID namespace, for `/proc`).
pub(crate) fn enter_rootfs(spec: &ProcessSpec, state_dir: &Path) -> Result<()> {
    // Slave, not private: host unmounts still reach us, and nothing we mount leaks back.
    set_propagation(Path::new("/"), MsFlags::MS_SLAVE | MsFlags::MS_REC)?;
    let root = state_dir.join("rootfs");
    create_mount_point(&root, MountPointKind::Directory)?;
    mount_rootfs(spec, &root, &state_dir.join("skeleton"))?;
    mount_pseudo_fs(&resolve_in_root(&root, Path::new("/proc")), "proc", MsFlags::empty(), "")?;
    setup_dev(&resolve_in_root(&root, Path::new("/dev")))?;
    mount_sys(&resolve_in_root(&root, Path::new("/sys")))?;
    for name in ETC_FILES {
        let target = resolve_in_root(&root, &Path::new("/etc").join(name));
        create_mount_point(&target, MountPointKind::File)?;
        mount_at(&read_only_bind(state_dir.join(name)), &target)?;
    }
    let mut mounts: Vec<_> = spec.mounts.iter().collect();
    // Parents before children, whatever order the caller listed them in.
    mounts.sort_by_key(|m| m.target.components().count());
    for container_mount in mounts {
        let target = resolve_in_root(&root, &container_mount.target);
        create_mount_point(&target, MountPointKind::of(&container_mount.mount))?;
        mount_at(&container_mount.mount, &target)?;
    }
    pivot_into(&root)?;
    mask_kernel_paths()?;
    if spec.readonly_rootfs {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

fn read_only_bind(source: PathBuf) -> Mount {
    Mount { fs_type: "bind".to_owned(), source, options: vec!["ro".to_owned()] }
}

/// Every path the runtime mounts on, with what it must be.
fn mount_points(spec: &ProcessSpec) -> Vec<(PathBuf, MountPointKind)> {
    let mut points: Vec<_> = ["/proc", "/dev", "/sys"]
        .into_iter()
        .map(|dir| (PathBuf::from(dir), MountPointKind::Directory))
        .chain(ETC_FILES.iter().map(|name| (Path::new("/etc").join(name), MountPointKind::File)))
        .collect();
    points.extend(spec.mounts.iter().map(|m| (m.target.clone(), MountPointKind::of(&m.mount))));
    points
}

fn mount_rootfs(spec: &ProcessSpec, root: &Path, skeleton: &Path) -> Result<()> {
    let points = mount_points(spec);
    let mounts = match &spec.rootfs {
        Rootfs::Directory(dir) => {
            let bind = Mount { fs_type: "bind".to_owned(), source: dir.clone(), options: vec!["rbind".to_owned()] };
            mount_at(&bind, root)?;
            return create_missing(root, &points);
        }
        Rootfs::Mounts(mounts) => mounts,
    };
    let Some(top_overlay) = mounts.iter().rposition(|m| m.fs_type == "overlay") else {
        // In the bind's source rather than under the mount, which may be read-only (a snapshotter's view).
        for bind in mounts.iter().filter(|m| is_bind(m) && m.source.is_dir()) {
            create_missing(&bind.source, &points)?;
        }
        mount_all(mounts, root)?;
        return create_missing(root, &points);
    };
    // Judged from the layer directories rather than by mounting twice: an overlay unmount costs an RCU grace
    // period, a third of a container start.
    let layers = overlay_layers(&mounts[top_overlay]);
    let missing: Vec<_> = points
        .iter()
        .filter(|(path, _)| topmost_entry(&layers, &resolve_in_layers(&layers, path)).is_none())
        .cloned()
        .collect();
    if missing.is_empty() {
        mount_all(mounts, root)?;
    } else {
        build_skeleton(&layers, skeleton, &missing)?;
        let mut with_skeleton = mounts.clone();
        let lowerdir = with_skeleton[top_overlay].options.iter_mut().find(|o| o.starts_with("lowerdir="));
        let lowerdir = lowerdir.ok_or_else(|| {
            Error::InvalidSpec(format!("overlay rootfs mount {:?} has no lowerdir", mounts[top_overlay]))
        })?;
        *lowerdir = format!("lowerdir={}:{}", skeleton.display(), &lowerdir["lowerdir=".len()..]);
        mount_all(&with_skeleton, root)?;
    }
    // A layer judged wrongly (an opaque directory, say) still gets its mount point, in the upper dir.
    create_missing(root, &points)
}

/// The layer directories of an overlay mount, topmost first: the upper dir, then the lower dirs in order.
fn overlay_layers(overlay: &Mount) -> Vec<PathBuf> {
    let option = |key: &str| overlay.options.iter().find_map(|o| o.strip_prefix(key)).map(str::to_owned);
    let upper = option("upperdir=").map(PathBuf::from);
    let lower = option("lowerdir=").unwrap_or_default();
    upper.into_iter().chain(lower.split(':').filter(|l| !l.is_empty()).map(PathBuf::from)).collect()
}

/// `relative`'s entry in the topmost layer that has one; `None` when no layer does or that entry is a whiteout
/// (a 0/0 character device).
fn topmost_entry(layers: &[PathBuf], relative: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    layers.iter().find_map(|layer| {
        let entry = layer.join(relative);
        let meta = entry.symlink_metadata().ok()?;
        Some((!(meta.file_type().is_char_device() && meta.rdev() == 0)).then_some(entry))
    })?
}

/// Resolves `path` in the merged view of `layers` (symlinks included) without mounting them.
fn resolve_in_layers(layers: &[PathBuf], path: &Path) -> PathBuf {
    resolve_path(path, |relative| topmost_entry(layers, relative).and_then(|entry| std::fs::read_link(entry).ok()))
}

fn mount_all(mounts: &[Mount], root: &Path) -> Result<()> {
    if mounts.is_empty() {
        return Err(Error::InvalidSpec("the rootfs has no mounts".to_owned()));
    }
    mounts.iter().try_for_each(|m| mount_at(m, root)).map_err(|e| match e {
        Error::Sys { context, source: Errno::EPERM } if !nix::unistd::geteuid().is_root() => Error::Rootless(format!(
            "{context}: EPERM: this kernel does not let a user namespace mount that; use a directory rootfs"
        )),
        e => e,
    })
}

fn create_missing(root: &Path, points: &[(PathBuf, MountPointKind)]) -> Result<()> {
    points.iter().try_for_each(|(path, kind)| create_mount_point(&resolve_in_root(root, path), *kind))
}

/// Lays out the missing mount points under `skeleton`. Directories that exist in a layer get its mode and
/// owner, because overlayfs shows a merged directory with the attributes of its topmost layer.
fn build_skeleton(layers: &[PathBuf], skeleton: &Path, missing: &[(PathBuf, MountPointKind)]) -> Result<()> {
    create_mount_point(skeleton, MountPointKind::Directory)?;
    for (path, kind) in missing {
        let relative = resolve_in_layers(layers, path);
        let mut dir = PathBuf::new();
        for part in relative.parent().into_iter().flat_map(Path::components) {
            dir.push(part);
            let copy = skeleton.join(&dir);
            if copy.exists() {
                continue;
            }
            create_mount_point(&copy, MountPointKind::Directory)?;
            if let Some(original) = topmost_entry(layers, &dir).and_then(|entry| entry.metadata().ok()) {
                std::fs::set_permissions(&copy, PermissionsExt::from_mode(original.mode()))
                    .context(|| format!("copying the mode of {} to the skeleton", dir.display()))?;
                // A rootless namespace may not map the owner; the directory then shows as nobody either way.
                let _ = chown(&copy, Some(original.uid()), Some(original.gid()));
            }
        }
        create_mount_point(&skeleton.join(&relative), *kind)?;
    }
    Ok(())
}

/// A read-only sysfs. A rootless container sharing the host's network may not mount sysfs (the network
/// namespace is not its own), so it gets a read-only bind of the host's, as runc does.
fn mount_sys(sys: &Path) -> Result<()> {
    match mount_pseudo_fs(sys, "sysfs", MsFlags::MS_RDONLY, "") {
        Err(Error::Sys { source: Errno::EPERM, .. }) => {
            let host = Mount {
                fs_type: "bind".to_owned(),
                source: PathBuf::from("/sys"),
                options: ["rbind", "ro", "nosuid", "nodev", "noexec"].map(String::from).to_vec(),
            };
            mount_at(&host, sys)
        }
        other => other,
    }
}

/// `pivot_root` with the new root as its own put-old, then detaches the old root, as runc does: no directory
/// for the old root is needed in the image.
fn pivot_into(root: &Path) -> Result<()> {
    chdir(root).context(|| format!("entering the rootfs at {}", root.display()))?;
    pivot_root(".", ".").context(|| format!("pivot_root into {}", root.display()))?;
    // The old root is stacked under "/" now; keep its unmount from propagating to the host.
    set_propagation(Path::new("."), MsFlags::MS_SLAVE | MsFlags::MS_REC)?;
    umount2(".", MntFlags::MNT_DETACH).context(|| "detaching the host's root after pivot_root".to_owned())?;
    chdir("/").context(|| "entering / after pivot_root".to_owned())
}

fn mask_kernel_paths() -> Result<()> {
    for path in MASKED_PATHS.map(Path::new) {
        let mask = match path.metadata() {
            Err(_) => continue,
            Ok(meta) if meta.is_dir() => {
                Mount { fs_type: "tmpfs".to_owned(), source: PathBuf::from("tmpfs"), options: vec!["ro".to_owned()] }
            }
            Ok(_) => read_only_bind(PathBuf::from("/dev/null")),
        };
        mount_at(&mask, path)?;
    }
    for path in READONLY_PATHS.map(Path::new).into_iter().filter(|p| p.exists()) {
        mount_at(&Mount { fs_type: "bind".to_owned(), source: path.to_owned(), options: vec!["rbind".into()] }, path)?;
        remount_bind(path, MsFlags::MS_RDONLY)?;
    }
    Ok(())
}
