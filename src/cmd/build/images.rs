//! Base images for `strata build`: the local store first (pulled, built or tagged images), then the registry
//! through the `--config` mirrors; a pulled image is named in the store so the solver finds it there.

use strata_frontend::lower::{ImageResolver, ResolvedImage};
use strata_llb::{ImageConfig, Platform};
use strata_registry::RegistryClient;

use crate::cmd::CliError;
use crate::cmd::store::{Stores, reference};

/// Resolves `FROM` references for the lowering, pulling what the store lacks.
pub struct StoreResolver<'a> {
    pub stores: &'a Stores,
    pub client: RegistryClient,
    pub runtime: &'a tokio::runtime::Runtime,
}

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, name: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        let reference = reference(name).map_err(|e| e.0)?;
        let manifest = match self.stores.metadata.image(&reference.to_string()).map_err(|e| e.to_string())? {
            Some(record) => record.manifest,
            None => self.pull(&reference, platform).map_err(|e| e.0)?,
        };
        let manifest: oci_manifest::Manifest = read_json(self.stores, &manifest.to_string())?;
        let config: oci_manifest::Config = read_json(self.stores, &manifest.config.digest)?;
        Ok(ResolvedImage { reference: reference.to_string(), config: config.config.unwrap_or_default() })
    }
}

impl StoreResolver<'_> {
    /// Pulls `reference` and names it in the store; returns its manifest digest.
    fn pull(
        &self,
        reference: &strata_registry::Reference,
        platform: &Platform,
    ) -> Result<strata_snapshotter::Digest, CliError> {
        let platform = platform.to_string().parse::<strata_registry::Platform>().map_err(CliError::from_display)?;
        let image = self
            .runtime
            .block_on(self.client.pull(reference, &self.stores.content, &platform))
            .map_err(CliError::from_display)?;
        let mut blobs = vec![image.manifest_digest.clone(), image.config_digest.clone()];
        blobs.extend(image.index_digest.clone());
        for layer in image.manifest.layers() {
            blobs.push(layer.digest().to_string().parse().map_err(CliError::from_display)?);
        }
        self.stores.name_image(reference, &image.manifest_digest, &blobs)?;
        Ok(image.manifest_digest)
    }
}

/// Reads a JSON blob of the content store.
fn read_json<T: serde::de::DeserializeOwned>(stores: &Stores, digest: &str) -> Result<T, String> {
    let digest: strata_snapshotter::Digest = digest.parse().map_err(|e| format!("{e}"))?;
    let bytes = stores.content.read_bytes(&digest).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("parsing {digest}: {e}"))
}

/// The parts of the manifest and config the resolver reads; the config keeps Docker's extensions
/// (Healthcheck, OnBuild, Shell) that oci-spec's types drop.
mod oci_manifest {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Manifest {
        pub config: Descriptor,
    }

    #[derive(Deserialize)]
    pub struct Descriptor {
        pub digest: String,
    }

    #[derive(Deserialize)]
    pub struct Config {
        #[serde(default)]
        pub config: Option<super::ImageConfig>,
    }
}
