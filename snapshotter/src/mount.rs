//! Mounts in containerd's shape: what a snapshotter hands out and a runtime mounts.

use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags, fsconfig_create,
    fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
};

use crate::error::{Error, IoContext, Result, show};

/// One filesystem mount: `overlay` with `lowerdir=`/`upperdir=`/`workdir=` options, or a `bind` of a directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Filesystem type as mount(2) takes it: `overlay` or `bind`.
    pub fs_type: String,
    /// The mount source: `overlay` for overlay mounts, a directory for binds.
    pub source: PathBuf,
    /// Mount options, e.g. `lowerdir=/a:/b`, `upperdir=/u`, `workdir=/w`, `ro`, `rbind`.
    pub options: Vec<String>,
}

impl Mount {
    /// A bind mount of `dir`, read-only when `readonly`.
    pub fn bind(dir: &Path, readonly: bool) -> Self {
        let mut options = vec!["rbind".to_owned()];
        options.push(if readonly { "ro" } else { "rw" }.to_owned());
        Self { fs_type: "bind".into(), source: dir.to_owned(), options }
    }

    /// An overlay of `lowers` (topmost first) with an optional writable (upper, work) pair; read-only without.
    pub fn overlay(lowers: &[PathBuf], upper: Option<(&Path, &Path)>) -> Self {
        let joined = lowers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
        let mut options = vec![format!("lowerdir={joined}")];
        match upper {
            Some((upper, work)) => {
                options.push(format!("upperdir={}", upper.display()));
                options.push(format!("workdir={}", work.display()));
            }
            None => options.push("ro".into()),
        }
        Self { fs_type: "overlay".into(), source: "overlay".into(), options }
    }

    /// Mounts this at `target`.
    ///
    /// Overlays go through the new mount API, one `lowerdir+` call per layer: the layer list never has to fit
    /// in the one page that mount(2) takes its options in, so deep chains of long paths still mount.
    pub fn mount(&self, target: &Path) -> Result<()> {
        let what = || format!("mounting {} {} on {}", self.fs_type, show(&self.source), show(target));
        match self.fs_type.as_str() {
            "bind" => self.mount_bind(target).context(what),
            "overlay" => self.mount_overlay(target).context(what),
            other => Err(Error::UnsupportedMount(other.to_owned())),
        }
    }

    fn mount_bind(&self, target: &Path) -> io::Result<()> {
        rustix::mount::mount_bind_recursive(&self.source, target)?;
        if self.options.iter().any(|o| o == "ro") {
            let flags = MountFlags::BIND | MountFlags::RDONLY;
            rustix::mount::mount_remount(target, flags, "")?;
        }
        Ok(())
    }

    fn mount_overlay(&self, target: &Path) -> io::Result<()> {
        let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        for option in &self.options {
            match option.split_once('=') {
                Some(("lowerdir", dirs)) => {
                    for dir in dirs.split(':') {
                        fsconfig_set_string(&fs, "lowerdir+", dir)?;
                    }
                }
                Some((key, value)) => fsconfig_set_string(&fs, key, value)?,
                None if option == "ro" => fsconfig_set_flag(&fs, "ro")?,
                None => fsconfig_set_flag(&fs, option.as_str())?,
            }
        }
        fsconfig_create(&fs)?;
        let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
        move_mount(&mnt, "", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)?;
        Ok(())
    }
}

/// Mounts `mounts` on `target` in order and returns a guard that unmounts them (in reverse) when dropped.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<MountGuard> {
    let mut guard = MountGuard { target: target.to_owned(), count: 0 };
    for mount in mounts {
        mount.mount(target)?;
        guard.count += 1;
    }
    Ok(guard)
}

/// Unmounts the filesystem at `target`, detaching it lazily if it is still busy.
pub fn unmount(target: &Path) -> Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(target, UnmountFlags::DETACH),
        other => other,
    }
    .map_err(io::Error::from)
    .context(|| format!("unmounting {}", show(target)))
}

/// Mounts made by [`mount_all`]; dropping it unmounts them.
#[derive(Debug)]
pub struct MountGuard {
    target: PathBuf,
    count: usize,
}

impl MountGuard {
    /// Unmounts now, reporting failure (dropping the guard ignores it).
    pub fn unmount(mut self) -> Result<()> {
        self.unmount_all()
    }

    fn unmount_all(&mut self) -> Result<()> {
        while self.count > 0 {
            unmount(&self.target)?;
            self.count -= 1;
        }
        Ok(())
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_all() {
            tracing::warn!("{e}");
        }
    }
}
