//! Mounts in containerd's shape: what a snapshotter hands out and a runtime mounts.

use std::path::PathBuf;

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
