//! Image sources: how `FROM` images become snapshots. [`ImageSource`] is what the solver needs;
//! [`StoreImageSource`] serves images already in strata's stores (pulled, built or imported), unpacking
//! their layers once each into snapshots keyed by chain ID.

use std::sync::{Arc, Mutex};

use oci_spec::image::{ImageConfiguration, ImageManifest};
use strata_llb::Platform;
use strata_snapshotter::{ContentStore, Digest, MetadataStore, SnapshotKind, Snapshotter, apply_blob};

use crate::error::{Error, Result};
use crate::snapshot::unique_key;

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
    /// Two builds of one base must not unpack the same layer at once.
    unpacking: Mutex<()>,
}

impl StoreImageSource {
    /// Serves the images of these stores.
    pub fn new(content: Arc<ContentStore>, metadata: Arc<MetadataStore>, snapshotter: Arc<dyn Snapshotter>) -> Self {
        Self { content, metadata, snapshotter, unpacking: Mutex::new(()) }
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
        let _one_at_a_time = self.unpacking.lock().unwrap_or_else(|e| e.into_inner());
        let diff_ids = image.config.rootfs().diff_ids();
        if diff_ids.len() != image.manifest.layers().len() {
            return Err(fail("the config's diff IDs and the manifest's layers differ in number".into()));
        }
        let mut parent: Option<String> = None;
        let mut chain = String::new();
        for (layer, diff_id) in image.manifest.layers().iter().zip(diff_ids) {
            chain = if chain.is_empty() {
                diff_id.clone()
            } else {
                Digest::of(format!("{chain} {diff_id}").as_bytes()).to_string()
            };
            let key = format!("layer/{chain}");
            let existing = self.metadata.snapshot(&key).map_err(|e| fail(e.to_string()))?;
            if !existing.is_some_and(|s| s.kind == SnapshotKind::Committed) {
                let digest: Digest =
                    layer.digest().to_string().parse().map_err(|e| fail(format!("layer digest: {e}")))?;
                let active = unique_key("unpack");
                self.snapshotter.prepare(&active, parent.as_deref()).map_err(|e| fail(e.to_string()))?;
                let applied = self
                    .snapshotter
                    .layout(&active)
                    .and_then(|layout| apply_blob(&self.content, &digest, &layout))
                    .and_then(|applied| self.snapshotter.commit(&key, &active).map(|()| applied));
                match applied {
                    Ok(applied) if applied.diff_id.to_string() == *diff_id => {}
                    Ok(applied) => {
                        let _ = self.snapshotter.remove(&key);
                        return Err(fail(format!("layer {digest} has diff ID {}, not {diff_id}", applied.diff_id)));
                    }
                    Err(e) => {
                        let _ = self.snapshotter.remove(&active);
                        return Err(fail(format!("unpacking layer {digest}: {e}")));
                    }
                }
            }
            parent = Some(key);
        }
        Ok(parent)
    }
}
