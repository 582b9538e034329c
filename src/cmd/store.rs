//! What the image subcommands share: strata's stores under `--root`, the registry client from `--config`, and
//! image names normalized like Docker's.

use std::future::Future;

use strata_registry::{Reference, RegistryClient, RegistryConfig};
use strata_snapshotter::metadata::{RefTarget, image_owner};
use strata_snapshotter::{ContentStore, Digest, MetadataStore};

use super::{CliError, Globals};

/// The content store and metadata database under `--root`.
pub struct Stores {
    pub content: ContentStore,
    pub metadata: MetadataStore,
}

impl Stores {
    /// Opens (creating if needed) both stores.
    pub fn open(globals: &Globals) -> Result<Self, CliError> {
        let content = ContentStore::open(globals.root.join("content")).map_err(CliError::from_display)?;
        let metadata = MetadataStore::open(&globals.root).map_err(CliError::from_display)?;
        Ok(Self { content, metadata })
    }

    /// The manifest digest the image `name` points at.
    pub fn image(&self, reference: &Reference) -> Result<Digest, CliError> {
        let name = reference.to_string();
        match self.metadata.image(&name).map_err(CliError::from_display)? {
            Some(record) => Ok(record.manifest),
            None => Err(CliError(format!("no image named {name}; pull or build it first"))),
        }
    }

    /// Points `reference` at `manifest` and keeps `blobs` alive for GC under its name.
    pub fn name_image(&self, reference: &Reference, manifest: &Digest, blobs: &[Digest]) -> Result<(), CliError> {
        let name = reference.to_string();
        let owner = image_owner(&name);
        self.metadata.remove_refs(&owner).map_err(CliError::from_display)?;
        for blob in blobs {
            self.metadata.add_ref(&owner, &RefTarget::Blob(blob.clone())).map_err(CliError::from_display)?;
        }
        self.metadata.put_image(&name, manifest).map_err(CliError::from_display)
    }

    /// The blobs `name` keeps alive, to copy them to another name.
    pub fn image_blobs(&self, reference: &Reference) -> Result<Vec<Digest>, CliError> {
        let owner = image_owner(&reference.to_string());
        let refs = self.metadata.refs().map_err(CliError::from_display)?;
        Ok(refs
            .into_iter()
            .filter(|(o, _)| *o == owner)
            .filter_map(|(_, target)| match target {
                RefTarget::Blob(digest) => Some(digest),
                RefTarget::Snapshot(_) => None,
            })
            .collect())
    }
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
