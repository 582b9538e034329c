//! The seam between `strata run` and image storage: [`resolve_image`] turns an image reference into rootfs
//! mounts and the image config. Until the store's image records and layer apply land, it reads `dir:PATH`
//! (a rootfs directory) and `oci:PATH[:TAG]` (an OCI image layout whose layers it unpacks into a temporary
//! directory: a stopgap, to be replaced by the snapshotter's mounts of the stored image).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use strata_runtime::Mount;

use crate::cmd::{CliError, Globals};

/// The parts of an OCI image config that drive a container.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `WorkingDir`; empty for `/`.
    pub working_dir: String,
    /// `User`; empty for root.
    pub user: String,
}

/// An image ready to run: overlay mounts of its layers with a throwaway upper dir, and its config.
#[derive(Debug)]
pub struct ResolvedImage {
    /// Mounts for the container's `/`.
    pub rootfs: Vec<Mount>,
    /// The image config.
    pub config: ImageConfig,
    /// Holds the upper and work dirs (and unpacked layers) until the container is gone.
    _scratch: tempfile::TempDir,
}

impl Drop for ResolvedImage {
    /// Overlayfs leaves `work/work` with mode 000; root removes it anyway, a rootless caller must open it first.
    fn drop(&mut self) {
        let inner_work = self._scratch.path().join("work/work");
        let _ = std::fs::set_permissions(inner_work, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    }
}

/// Resolves `reference` (`dir:PATH` or `oci:PATH[:TAG]`) to mounts and config; writes go to a temporary upper
/// dir that is discarded, so the image is never modified.
pub fn resolve_image(_globals: &Globals, reference: &str) -> Result<ResolvedImage, CliError> {
    let scratch = tempfile::Builder::new()
        .prefix("strata-run-image-")
        .tempdir()
        .map_err(|e| CliError(format!("creating a scratch directory for {reference}: {e}")))?;
    let (lower, config) = if let Some(dir) = reference.strip_prefix("dir:") {
        let dir = std::path::absolute(dir).map_err(|e| CliError(format!("resolving {dir}: {e}")))?;
        if !dir.is_dir() {
            return Err(CliError(format!("{reference}: {} is not a directory", dir.display())));
        }
        (dir, ImageConfig::default())
    } else if let Some(layout) = reference.strip_prefix("oci:") {
        let (path, tag) = split_tag(layout);
        let unpacked = scratch.path().join("layers");
        let config = unpack_oci_layout(Path::new(path), tag, &unpacked)
            .map_err(|e| CliError(format!("reading the OCI layout {path} (tag {tag}): {e}")))?;
        (unpacked, config)
    } else {
        return Err(CliError(format!(
            "image {reference:?}: the image store is not wired in yet; use dir:ROOTFS or oci:LAYOUT[:TAG]"
        )));
    };
    let (upper, work) = (scratch.path().join("upper"), scratch.path().join("work"));
    for dir in [&upper, &work] {
        std::fs::create_dir(dir).map_err(|e| CliError(format!("creating {}: {e}", dir.display())))?;
    }
    let overlay = Mount {
        fs_type: "overlay".to_owned(),
        source: PathBuf::from("overlay"),
        options: vec![
            format!("lowerdir={}", lower.display()),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ],
    };
    Ok(ResolvedImage { rootfs: vec![overlay], config, _scratch: scratch })
}

/// `PATH:TAG` to its parts; `latest` when no tag (a colon in the last path component starts the tag).
fn split_tag(layout: &str) -> (&str, &str) {
    match layout.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, tag),
        _ => (layout, "latest"),
    }
}

type Stopgap<T> = Result<T, String>;

fn read_json(path: &Path) -> Stopgap<serde_json::Value> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("parsing {}: {e}", path.display()))
}

fn blob_path(layout: &Path, descriptor: &serde_json::Value) -> Stopgap<PathBuf> {
    let digest = descriptor["digest"].as_str().ok_or("a descriptor has no digest")?;
    let (algorithm, hex) = digest.split_once(':').ok_or_else(|| format!("malformed digest {digest}"))?;
    Ok(layout.join("blobs").join(algorithm).join(hex))
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

/// Finds the manifest tagged `tag`, unpacks its layers in order into `into`, and returns its config.
fn unpack_oci_layout(layout: &Path, tag: &str, into: &Path) -> Stopgap<ImageConfig> {
    let index = read_json(&layout.join("index.json"))?;
    let manifest = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(tag))
        .ok_or_else(|| format!("no manifest tagged {tag} in index.json"))?;
    let manifest = read_json(&blob_path(layout, manifest)?)?;
    let config = read_json(&blob_path(layout, &manifest["config"])?)?;
    std::fs::create_dir_all(into).map_err(|e| format!("creating {}: {e}", into.display()))?;
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let media_type = layer["mediaType"].as_str().unwrap_or_default();
        let path = blob_path(layout, layer)?;
        apply_layer(&path, media_type.ends_with("gzip"), into).map_err(|e| format!("layer {}: {e}", path.display()))?;
    }
    let c = &config["config"];
    Ok(ImageConfig {
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        env: strings(&c["Env"]),
        working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_owned(),
        user: c["User"].as_str().unwrap_or_default().to_owned(),
    })
}

fn open_layer(path: &Path, gzip: bool) -> Stopgap<tar::Archive<Box<dyn Read>>> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    Ok(archive)
}

/// Applies one layer: its whiteouts first (a first pass), then its files.
fn apply_layer(path: &Path, gzip: bool, into: &Path) -> Stopgap<()> {
    let mut whiteouts = open_layer(path, gzip)?;
    for entry in whiteouts.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.path().map_err(|e| e.to_string())?.into_owned();
        let Some(file) = name.file_name().and_then(|f| f.to_str()) else { continue };
        let parent = into.join(name.parent().unwrap_or(Path::new("")));
        if file == ".wh..wh..opq" {
            for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                remove(&child.path())?;
            }
        } else if let Some(hidden) = file.strip_prefix(".wh.") {
            remove(&parent.join(hidden))?;
        }
    }
    let mut files = open_layer(path, gzip)?;
    for entry in files.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let whiteout = entry
            .path()
            .map_err(|e| e.to_string())?
            .file_name()
            .is_some_and(|f| f.to_str().is_some_and(|f| f.starts_with(".wh.")));
        if !whiteout {
            entry.unpack_in(into).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Stopgap<()> {
    let result = match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    result.map_err(|e| format!("removing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_off_the_last_component_only() {
        assert_eq!(split_tag("/images/busybox:1.36"), ("/images/busybox", "1.36"));
        assert_eq!(split_tag("/images/busybox"), ("/images/busybox", "latest"));
        assert_eq!(split_tag("./a:b/layout"), ("./a:b/layout", "latest"));
    }
}
