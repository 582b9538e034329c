//! `/dev`: a fresh tmpfs with Docker's device set, so nothing the container does there reaches the rootfs.

use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use strata_snapshotter::mount::Mount;

use crate::error::{Context, Result};
use crate::mounts::{MountPointKind, create_mount_point, create_symlink, mount_at, mount_pseudo_fs};

/// Device nodes every container gets. They are bind-mounted from the host rather than made with mknod, because
/// mknod is refused in a user namespace and binds behave the same as root.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Docker's and runc's standard links.
const SYMLINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

/// Mounts and fills `/dev` at `dev` (the rootfs's `/dev`, before `pivot_root`).
pub(crate) fn setup_dev(dev: &Path) -> Result<()> {
    create_mount_point(dev, MountPointKind::Directory)?;
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .context(|| format!("mounting a tmpfs at {}", dev.display()))?;
    for name in DEVICES {
        let node = dev.join(name);
        create_mount_point(&node, MountPointKind::File)?;
        let host = bind(Path::new("/dev").join(name));
        mount_at(&host, &node)?;
    }
    for (target, link) in SYMLINKS {
        create_symlink(target, &dev.join(link))?;
    }
    // runc links /dev/core only where the kernel has /proc/kcore; match it so `ls /dev` agrees.
    if Path::new("/proc/kcore").exists() {
        create_symlink("/proc/kcore", &dev.join("core"))?;
    }
    mount_devpts(&dev.join("pts"))?;
    mount_pseudo_fs(&dev.join("shm"), "tmpfs", MsFlags::empty(), "mode=1777,size=65536k")?;
    mount_pseudo_fs(&dev.join("mqueue"), "mqueue", MsFlags::empty(), "")
}

fn bind(source: PathBuf) -> Mount {
    Mount { fs_type: "bind".to_owned(), source, options: Vec::new() }
}

/// A devpts instance of the container's own, so its ptys are not the host's. Group 5 is `tty` everywhere;
/// a rootless namespace without that group mapped cannot name it, so the option is dropped there.
fn mount_devpts(pts: &Path) -> Result<()> {
    create_mount_point(pts, MountPointKind::Directory)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let with_tty_group = "newinstance,ptmxmode=0666,mode=0620,gid=5";
    mount(Some("devpts"), pts, Some("devpts"), flags, Some(with_tty_group))
        .or_else(|_| mount(Some("devpts"), pts, Some("devpts"), flags, Some("newinstance,ptmxmode=0666,mode=0620")))
        .context(|| format!("mounting a new devpts instance at {}", pts.display()))
}
