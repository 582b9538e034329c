//! The seam between `strata run` and image storage: [`resolve_image`] turns an image argument into rootfs
//! mounts and the image config. `dir:PATH` runs over a root filesystem directory; anything else is an image
//! name, normalized like Docker's (`busybox` is `docker.io/library/busybox:latest`), taken from the store or
//! pulled into it, and run over a fresh active snapshot on the image's unpacked layers.
//!
//! Writes are always discarded: the active snapshot (or, for `dir:`, the scratch upper directory) is removed
//! when the [`ResolvedImage`] is dropped. A `strata` killed mid-run leaves its active snapshot behind for
//! `strata prune --all` to remove; keeping containers (`--rm=false`) would instead commit or keep it.

use std::time::{SystemTime, UNIX_EPOCH};

use strata_llb::ImageConfig;
use strata_registry::Platform;
use strata_runtime::Mount;

use crate::cmd::pull::pull;
use crate::cmd::store::{Stores, reference};
use crate::cmd::{CliError, Globals};

/// An image ready to run: mounts for the container's `/` that discard writes, and the image config.
pub struct ResolvedImage {
    /// Mounts for the container's `/`.
    pub rootfs: Vec<Mount>,
    /// The image config.
    pub config: ImageConfig,
    /// Where the container's writes go; removed on drop.
    _writable: Writable,
}

/// The throwaway writable layer of a container.
enum Writable {
    /// Upper and work directories over a `dir:` rootfs.
    Scratch(tempfile::TempDir),
    /// An active snapshot on the image's top layer.
    Snapshot { stores: Stores, key: String },
}

impl Drop for Writable {
    fn drop(&mut self) {
        match self {
            // Overlayfs leaves `work/work` with mode 000; root removes it anyway, a rootless caller must open it.
            Self::Scratch(scratch) => {
                let inner_work = scratch.path().join("work/work");
                let _ = std::fs::set_permissions(inner_work, std::os::unix::fs::PermissionsExt::from_mode(0o700));
            }
            Self::Snapshot { stores, key } => {
                if let Err(e) = stores.snapshotter.remove(key) {
                    tracing::warn!("removing the container snapshot {key} (strata prune --all will): {e}");
                }
            }
        }
    }
}

/// Resolves `image` (`dir:PATH` or an image name) to mounts and config, pulling a name missing from the store.
pub fn resolve_image(globals: &Globals, image: &str) -> Result<ResolvedImage, CliError> {
    match image.strip_prefix("dir:") {
        Some(dir) => resolve_dir(dir),
        None => resolve_stored(globals, image),
    }
}

/// A rootfs directory under an overlay whose upper directory is temporary, so the directory is never modified.
fn resolve_dir(dir: &str) -> Result<ResolvedImage, CliError> {
    let lower = std::path::absolute(dir).map_err(|e| CliError(format!("resolving {dir}: {e}")))?;
    if !lower.is_dir() {
        return Err(CliError(format!("dir:{dir}: {} is not a directory", lower.display())));
    }
    let scratch = tempfile::Builder::new()
        .prefix("strata-run-dir-")
        .tempdir()
        .map_err(|e| CliError(format!("creating a scratch directory for dir:{dir}: {e}")))?;
    let (upper, work) = (scratch.path().join("upper"), scratch.path().join("work"));
    for dir in [&upper, &work] {
        std::fs::create_dir(dir).map_err(|e| CliError(format!("creating {}: {e}", dir.display())))?;
    }
    Ok(ResolvedImage {
        rootfs: vec![Mount::overlay(&[lower], Some((&upper, &work)))],
        config: ImageConfig::default(),
        _writable: Writable::Scratch(scratch),
    })
}

/// A stored (or freshly pulled) image under a new active snapshot on its top layer.
fn resolve_stored(globals: &Globals, image: &str) -> Result<ResolvedImage, CliError> {
    let reference = reference(image)?;
    let stores = Stores::open(globals)?;
    if !stores.has_image(&reference)? {
        eprintln!("Unable to find image '{reference}' locally; pulling it");
        pull(globals, &stores, &reference, &Platform::host())?;
    }
    let stored = stores.load_image(&reference)?;
    // Unpacking again is a no-op unless the snapshots were lost; it also covers images built, not pulled.
    let top = stores.unpack_image(&reference, &stored)?;
    let key = container_key();
    let rootfs = stores
        .snapshotter
        .prepare(&key, Some(&top))
        .map_err(|e| CliError(format!("preparing a container snapshot on {reference}: {e}")))?;
    Ok(ResolvedImage { rootfs, config: stored.config, _writable: Writable::Snapshot { stores, key } })
}

/// A snapshot key unique to this container: `run-<pid>-<nanoseconds since the epoch>`.
fn container_key() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("run-{}-{nanos}", std::process::id())
}
