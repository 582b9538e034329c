//! What the image subcommands share: strata's stores and snapshotter under `--root`, stored images and their
//! unpacking, the registry client from `--config`, and image names normalized like Docker's.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use strata_llb::ImageConfig;
use strata_registry::{Reference, RegistryClient, RegistryConfig};
use strata_snapshotter::metadata::{RefTarget, image_owner};
use strata_snapshotter::snapshot::{self, Snapshotter};
use strata_snapshotter::{ContentStore, Digest, MetadataStore, unpack_referenced};

use super::{CliError, Globals};

/// The content store, metadata database and snapshotter under `--root`.
pub struct Stores {
    pub content: Arc<ContentStore>,
    pub metadata: Arc<MetadataStore>,
    pub snapshotter: Arc<dyn Snapshotter>,
}

/// What running a stored image needs: its layers and the `config` object of its configuration.
#[derive(Debug)]
pub struct StoredImage {
    /// `(blob, diffID)` per layer, base first.
    pub layers: Vec<(Digest, Digest)>,
    /// Entrypoint, Cmd, Env, WorkingDir, User and the rest.
    pub config: ImageConfig,
}

impl Stores {
    /// Opens (creating if needed) the stores, and the snapshotter `--snapshotter` names or the probe picks.
    pub fn open(globals: &Globals) -> Result<Self, CliError> {
        let content = Arc::new(ContentStore::open(globals.root.join("content")).map_err(CliError::from_display)?);
        let metadata = Arc::new(MetadataStore::open(&globals.root).map_err(CliError::from_display)?);
        let kind = globals.snapshotter.unwrap_or_else(|| snapshot::probe(&globals.root));
        let snapshotter = snapshot::open(&globals.root, metadata.clone(), kind).map_err(CliError::from_display)?;
        Ok(Self { content, metadata, snapshotter: snapshotter.into() })
    }

    /// The manifest digest the image `name` points at.
    pub fn image(&self, reference: &Reference) -> Result<Digest, CliError> {
        let name = reference.to_string();
        match self.metadata.image(&name).map_err(CliError::from_display)? {
            Some(record) => Ok(record.manifest),
            None => Err(CliError(format!("no image named {name}; pull or build it first"))),
        }
    }

    /// Whether an image is named `reference`.
    pub fn has_image(&self, reference: &Reference) -> Result<bool, CliError> {
        Ok(self.metadata.image(&reference.to_string()).map_err(CliError::from_display)?.is_some())
    }

    /// Points `reference` at `manifest` and keeps `targets` alive for GC under its name.
    pub fn name_image(&self, reference: &Reference, manifest: &Digest, targets: &[RefTarget]) -> Result<(), CliError> {
        let owner = image_owner(&reference.to_string());
        self.metadata.remove_refs(&owner).map_err(CliError::from_display)?;
        for target in targets {
            self.metadata.add_ref(&owner, target).map_err(CliError::from_display)?;
        }
        self.metadata.put_image(&reference.to_string(), manifest).map_err(CliError::from_display)
    }

    /// The blobs and snapshots `reference` keeps alive, to give another name the same.
    pub fn image_refs(&self, reference: &Reference) -> Result<Vec<RefTarget>, CliError> {
        let owner = image_owner(&reference.to_string());
        let refs = self.metadata.refs().map_err(CliError::from_display)?;
        Ok(refs.into_iter().filter(|(o, _)| *o == owner).map(|(_, target)| target).collect())
    }

    /// A JSON blob (manifest, index or config) from the content store.
    pub fn read_json(&self, digest: &Digest) -> Result<Value, CliError> {
        let bytes = self.content.read_bytes(digest).map_err(CliError::from_display)?;
        serde_json::from_slice(&bytes).map_err(|e| CliError(format!("blob {digest} is not JSON: {e}")))
    }

    /// Reads the layers and config of the image named `reference` from its manifest and configuration.
    pub fn load_image(&self, reference: &Reference) -> Result<StoredImage, CliError> {
        let manifest_digest = self.image(reference)?;
        let manifest = self.read_json(&manifest_digest)?;
        let malformed = |what: &str| CliError(format!("image {reference} (manifest {manifest_digest}): {what}"));
        let config_digest = digest_at(&manifest["config"]["digest"]).ok_or_else(|| malformed("no config digest"))?;
        let configuration = self.read_json(&config_digest)?;
        let blobs = manifest["layers"].as_array().ok_or_else(|| malformed("no layers list"))?;
        let diff_ids = configuration["rootfs"]["diff_ids"].as_array().ok_or_else(|| malformed("no rootfs.diff_ids"))?;
        if blobs.len() != diff_ids.len() {
            let counts = format!("{} layers but {} diffIDs in config {config_digest}", blobs.len(), diff_ids.len());
            return Err(malformed(&counts));
        }
        let layers = blobs
            .iter()
            .zip(diff_ids)
            .map(|(blob, diff_id)| Some((digest_at(&blob["digest"])?, digest_at(diff_id)?)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("a layer or diffID is not a sha256 digest"))?;
        let config = match &configuration["config"] {
            Value::Null => ImageConfig::default(),
            object => serde_json::from_value(object.clone())
                .map_err(|e| malformed(&format!("config {config_digest} has a malformed config object: {e}")))?,
        };
        Ok(StoredImage { layers, config })
    }

    /// Unpacks `image`'s layers into snapshots, keeps them alive under `reference`, and returns the top one's key.
    pub fn unpack_image(&self, reference: &Reference, image: &StoredImage) -> Result<String, CliError> {
        let owner = image_owner(&reference.to_string());
        unpack_referenced(&self.metadata, &owner, &self.content, self.snapshotter.as_ref(), &image.layers)
            .map_err(|e| CliError(format!("unpacking {reference}: {e}")))
    }
}

/// The digest a JSON string holds, if it is one.
fn digest_at(value: &Value) -> Option<Digest> {
    value.as_str()?.parse().ok()
}

/// Parses a reference given on the command line.
pub fn reference(input: &str) -> Result<Reference, CliError> {
    Reference::parse(input).map_err(CliError::from_display)
}

/// A registry client configured from `--config` / `STRATA_CONFIG`.
pub fn registry_client(globals: &Globals) -> Result<RegistryClient, CliError> {
    let config = RegistryConfig::load_optional(globals.config.as_deref()).map_err(CliError::from_display)?;
    Ok(RegistryClient::builder().config(config).build())
}

/// Runs a registry operation to completion on a runtime of its own.
pub fn block_on<T>(future: impl Future<Output = T>) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("starting the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use strata_snapshotter::SnapshotterKind;

    use super::*;

    fn stores(root: &std::path::Path) -> Stores {
        let globals = Globals { root: root.to_owned(), config: None, snapshotter: Some(SnapshotterKind::Native) };
        Stores::open(&globals).unwrap()
    }

    /// Stores a manifest with `layers` blob digests over a configuration, and names it `reference`.
    fn store_image(stores: &Stores, reference: &Reference, layers: &[Digest], configuration: &Value) {
        let config = stores.content.write_bytes(configuration.to_string().as_bytes()).unwrap();
        let layers: Vec<Value> = layers.iter().map(|d| json!({"digest": d.to_string()})).collect();
        let manifest = json!({"config": {"digest": config.to_string()}, "layers": layers});
        let manifest = stores.content.write_bytes(manifest.to_string().as_bytes()).unwrap();
        stores.name_image(reference, &manifest, &[]).unwrap();
    }

    #[test]
    fn load_image_pairs_layers_with_diff_ids_and_reads_the_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let stores = stores(dir.path());
        let reference = reference("busybox").unwrap();
        assert_eq!(reference.to_string(), "docker.io/library/busybox:latest", "names normalize like Docker's");
        let (blob, diff_id) = (Digest::of(b"blob"), Digest::of(b"tar"));
        let configuration = json!({
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "config": {"Cmd": ["sh"], "Env": ["A=1"], "WorkingDir": "/w"},
        });
        store_image(&stores, &reference, std::slice::from_ref(&blob), &configuration);
        let image = stores.load_image(&reference).unwrap();
        assert_eq!(image.layers, vec![(blob, diff_id)]);
        assert_eq!(image.config.cmd, Some(vec!["sh".to_owned()]));
        assert_eq!(image.config.working_dir.as_deref(), Some("/w"));
    }

    #[test]
    fn load_image_refuses_a_config_whose_diff_ids_do_not_match_the_layers() {
        let dir = tempfile::tempdir().unwrap();
        let stores = stores(dir.path());
        let reference = reference("127.0.0.1:5000/broken:1").unwrap();
        let configuration = json!({"rootfs": {"diff_ids": []}});
        store_image(&stores, &reference, &[Digest::of(b"blob")], &configuration);
        let err = stores.load_image(&reference).unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:5000/broken:1") && err.contains("1 layers but 0 diffIDs"), "{err}");
    }
}
