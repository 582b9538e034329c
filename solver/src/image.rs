//! Image sources: how `FROM` images become snapshots. [`ImageSource`] is what the solver needs;
//! [`StoreImageSource`] serves images already in strata's stores (pulled, built or imported), unpacking
//! their layers once each into snapshots keyed by chain ID.

use std::sync::Arc;

use oci_spec::image::{ImageConfiguration, ImageManifest};
use strata_llb::Platform;
use strata_snapshotter::metadata::image_owner;
use strata_snapshotter::{ContentStore, Digest, MetadataStore, Snapshotter, unpack_referenced};

use crate::error::{Error, Result};

/// A resolved base image: its manifest and configuration.
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// The reference as the build graph names it.
    pub reference: String,
    /// The digest of the manifest.
    pub manifest_digest: Digest,
    /// The manifest: its layers are reused as they are by the exporter.
    pub manifest: ImageManifest,
    /// The configuration: diff IDs and history come first in the built image.
    pub config: ImageConfiguration,
}

impl SourceImage {
    /// Its layers as `(blob digest, diffID)` pairs, base first; the manifest and the config must agree on them.
    pub fn layers(&self) -> Result<Vec<(Digest, Digest)>> {
        let fail = |reason: String| Error::Image { reference: self.reference.clone(), reason };
        let diff_ids = self.config.rootfs().diff_ids();
        if diff_ids.len() != self.manifest.layers().len() {
            return Err(fail("the config's diff IDs and the manifest's layers differ in number".into()));
        }
        self.manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(layer, diff_id)| Ok((layer.digest().to_string().parse()?, diff_id.parse()?)))
            .collect::<strata_snapshotter::Result<Vec<(Digest, Digest)>>>()
            .map_err(|e| fail(format!("a layer digest or diff ID: {e}")))
    }
}

/// Where `FROM` images come from.
pub trait ImageSource: Send + Sync {
    /// Finds `reference` for `platform`.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<SourceImage>;
    /// Makes the image's filesystem a committed snapshot and returns its key (`None`: no layers).
    fn unpack(&self, image: &SourceImage) -> Result<Option<String>>;
}

/// Images named in the metadata store, blobs in the content store.
#[derive(Debug)]
pub struct StoreImageSource {
    content: Arc<ContentStore>,
    metadata: Arc<MetadataStore>,
    snapshotter: Arc<dyn Snapshotter>,
}

impl StoreImageSource {
    /// Serves the images of these stores.
    pub fn new(content: Arc<ContentStore>, metadata: Arc<MetadataStore>, snapshotter: Arc<dyn Snapshotter>) -> Self {
        Self { content, metadata, snapshotter }
    }

    /// Reads a JSON blob.
    fn blob<T: serde::de::DeserializeOwned>(&self, reference: &str, digest: &Digest, what: &str) -> Result<T> {
        let fail = |reason: String| Error::Image { reference: reference.to_owned(), reason };
        let bytes = self.content.read_bytes(digest).map_err(|e| fail(format!("reading the {what} {digest}: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("parsing the {what} {digest}: {e}")))
    }
}

impl ImageSource for StoreImageSource {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<SourceImage> {
        let fail = |reason: String| Error::Image { reference: reference.to_owned(), reason };
        let record = self
            .metadata
            .image(reference)
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("not in the local store; pull it first".into()))?;
        let manifest: ImageManifest = self.blob(reference, &record.manifest, "manifest")?;
        let config_digest: Digest =
            manifest.config().digest().to_string().parse().map_err(|e| fail(format!("config digest: {e}")))?;
        let config = self.blob(reference, &config_digest, "config")?;
        Ok(SourceImage { reference: reference.to_owned(), manifest_digest: record.manifest, manifest, config })
    }

    fn unpack(&self, image: &SourceImage) -> Result<Option<String>> {
        let fail = |reason: String| Error::Image { reference: image.reference.clone(), reason };
        let layers = image.layers()?;
        if layers.is_empty() {
            return Ok(None);
        }
        let owner = image_owner(&image.reference);
        unpack_referenced(&self.metadata, &owner, &self.content, self.snapshotter.as_ref(), &layers)
            .map(Some)
            .map_err(|e| fail(format!("unpacking: {e}")))
    }
}
