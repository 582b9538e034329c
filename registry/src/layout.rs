//! Importing an image from an OCI image layout directory into the content store, as a pull does from a
//! registry: the image a tag or digest picks (the only one when neither is given), the platform's manifest
//! from an index, and every blob streamed in with its digest and size verified.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use strata_snapshotter::{ContentStore, Digest};

use crate::error::{Error, Result};
use crate::manifest::{MAX_MANIFEST_SIZE, Manifest, descriptor_digest};
use crate::{Platform, PulledImage};

/// The annotation naming an image in a layout's `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Imports the image `selector` names from the OCI layout at `dir` into `store`: a tag (matched against
/// `org.opencontainers.image.ref.name`), a `sha256:` digest, or `None` for a layout holding one image.
pub fn import_layout(
    dir: &Path,
    selector: Option<&str>,
    store: &ContentStore,
    platform: &Platform,
) -> Result<PulledImage> {
    let layout = Layout { dir, store };
    let index = layout.read_index()?;
    let top = layout.pick(&index, selector)?;
    let top_digest = descriptor_digest(&top).map_err(|reason| layout.error(reason))?;
    let bytes = layout.small_blob(&top_digest, top.size())?;
    let (index_digest, manifest_digest, manifest) =
        match Manifest::parse(&bytes, Some(top.media_type().as_ref())).map_err(|r| layout.error(r))?.0 {
            Manifest::Image(manifest) => (None, top_digest, *manifest),
            Manifest::Index(index) => {
                let entry = index
                    .manifests()
                    .iter()
                    .find(|m| m.platform().as_ref().is_some_and(|p| platform.matches(p)))
                    .ok_or_else(|| layout.error(format!("index {top_digest} has no manifest for {platform}")))?;
                let digest = descriptor_digest(entry).map_err(|reason| layout.error(reason))?;
                let bytes = layout.small_blob(&digest, entry.size())?;
                let manifest = ImageManifest::from_reader(bytes.as_slice())
                    .map_err(|e| layout.error(format!("manifest {digest}: {e}")))?;
                (Some(top_digest), digest, manifest)
            }
        };
    let config_digest = descriptor_digest(manifest.config()).map_err(|reason| layout.error(reason))?;
    let config_bytes = layout.small_blob(&config_digest, manifest.config().size())?;
    let config = ImageConfiguration::from_reader(config_bytes.as_slice())
        .map_err(|e| layout.error(format!("config {config_digest}: {e}")))?;
    for layer in manifest.layers() {
        let digest = descriptor_digest(layer).map_err(|reason| layout.error(reason))?;
        layout.copy_blob(&digest, layer.size())?;
    }
    Ok(PulledImage { index_digest, manifest_digest, manifest, config_digest, config })
}

/// Reads the image manifest `selector` names (as [`import_layout`] picks it) from the OCI layout at `dir`, storing
/// it and its config blob in `store` but none of its layers: what reading a build cache needs.
pub fn layout_manifest(dir: &Path, selector: Option<&str>, store: &ContentStore) -> Result<(Digest, ImageManifest)> {
    let layout = Layout { dir, store };
    let top = layout.pick(&layout.read_index()?, selector)?;
    let digest = descriptor_digest(&top).map_err(|reason| layout.error(reason))?;
    let bytes = layout.small_blob(&digest, top.size())?;
    let manifest =
        ImageManifest::from_reader(bytes.as_slice()).map_err(|e| layout.error(format!("manifest {digest}: {e}")))?;
    let config = descriptor_digest(manifest.config()).map_err(|reason| layout.error(reason))?;
    layout.copy_blob(&config, manifest.config().size())?;
    Ok((digest, manifest))
}

/// Copies the blob `digest` of `size` bytes from the OCI layout at `dir` into `store`, verifying both.
pub fn layout_blob(dir: &Path, store: &ContentStore, digest: &Digest, size: u64) -> Result<()> {
    Layout { dir, store }.copy_blob(digest, size)
}

/// A layout directory being imported into a store.
struct Layout<'a> {
    dir: &'a Path,
    store: &'a ContentStore,
}

impl Layout<'_> {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Layout { path: self.dir.to_owned(), reason: reason.into() }
    }

    fn read_index(&self) -> Result<ImageIndex> {
        let path = self.dir.join("index.json");
        let file = File::open(&path).map_err(|e| self.error(format!("reading {}: {e}", path.display())))?;
        ImageIndex::from_reader(file.take(MAX_MANIFEST_SIZE as u64))
            .map_err(|e| self.error(format!("parsing {}: {e}", path.display())))
    }

    /// The `index.json` entry `selector` names.
    fn pick(&self, index: &ImageIndex, selector: Option<&str>) -> Result<Descriptor> {
        let manifests = index.manifests();
        let name = |d: &Descriptor| d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).cloned();
        let found = match selector {
            None if manifests.len() == 1 => manifests.first(),
            None => {
                let names: Vec<String> = manifests.iter().filter_map(name).collect();
                let names = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
                return Err(self.error(format!("it holds {} images; name one by tag ({names})", manifests.len())));
            }
            Some(wanted) if wanted.starts_with("sha256:") => {
                manifests.iter().find(|d| d.digest().to_string() == wanted)
            }
            Some(tag) => {
                manifests.iter().find(|d| name(d).is_some_and(|n| n == tag || n.ends_with(&format!(":{tag}"))))
            }
        };
        found.cloned().ok_or_else(|| self.error(format!("index.json has no image {:?}", selector.unwrap_or_default())))
    }

    /// Where a blob lives in the layout.
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }

    /// Copies a blob into the store (unless there) and reads it back: manifests, indexes, configs.
    fn small_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>> {
        if size > MAX_MANIFEST_SIZE as u64 {
            return Err(self.error(format!("{digest} is {size} bytes, too big for a manifest or config")));
        }
        self.copy_blob(digest, size)?;
        self.store.read_bytes(digest).map_err(|source| Error::Store { context: format!("reading {digest}"), source })
    }

    /// Streams a blob into the store, verifying its digest and size; a blob already stored is kept.
    fn copy_blob(&self, digest: &Digest, size: u64) -> Result<()> {
        if self.store.exists(digest) {
            return Ok(());
        }
        let path = self.blob_path(digest);
        let mut file = File::open(&path).map_err(|e| self.error(format!("opening {}: {e}", path.display())))?;
        let store_error = |source| Error::Store { context: format!("importing {digest}"), source };
        let mut writer = self.store.writer().map_err(store_error)?;
        std::io::copy(&mut file, &mut writer).map_err(|e| self.error(format!("reading {}: {e}", path.display())))?;
        writer.commit_sized(digest, size).map_err(|e| self.error(format!("blob {digest} failed verification: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layout with one blob that is not what its name says, listed under the tag `bad`.
    fn layout_with_a_corrupt_manifest(dir: &Path) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let claimed = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        std::fs::write(blobs.join(claimed), b"not empty").unwrap();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:{claimed}","size":9,"annotations":{{"{REF_NAME}":"bad"}}}}]}}"#
        );
        std::fs::write(dir.join("index.json"), index).unwrap();
    }

    #[test]
    fn blobs_are_verified_and_selectors_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path().join("store")).unwrap();
        let layout = dir.path().join("layout");
        layout_with_a_corrupt_manifest(&layout);
        let err = import_layout(&layout, Some("bad"), &store, &Platform::host()).unwrap_err().to_string();
        assert!(err.contains("failed verification"), "{err}");
        let err = import_layout(&layout, Some("other"), &store, &Platform::host()).unwrap_err().to_string();
        assert!(err.contains("index.json has no image \"other\""), "{err}");
        assert!(store.walk().unwrap().is_empty(), "nothing unverified enters the store");
    }
}
