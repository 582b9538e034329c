//! `strata pull REF`: fetch an image into the content store, name it, and unpack it into snapshots.

use std::process::ExitCode;

use strata_registry::{Platform, PulledImage, Reference};
use strata_snapshotter::Digest;
use strata_snapshotter::metadata::RefTarget;

use super::store::{Stores, block_on, reference, registry_client};
use super::{CliError, Globals};

/// Arguments of `strata pull`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image, as `docker pull` takes it (`busybox`, `host:port/repo:tag`, `repo@sha256:...`).
    pub reference: String,
    /// The platform to pick from a multi-platform image (`os/arch[/variant]`); this machine's by default.
    #[arg(long)]
    pub platform: Option<String>,
}

/// Pulls the image and prints its manifest digest.
pub fn run(globals: &Globals, args: Args) -> Result<ExitCode, CliError> {
    let reference = reference(&args.reference)?;
    let platform = match &args.platform {
        Some(p) => p.parse::<Platform>().map_err(CliError::from_display)?,
        None => Platform::host(),
    };
    let stores = Stores::open(globals)?;
    let manifest = pull(globals, &stores, &reference, &platform)?;
    println!("{reference}: {manifest}");
    Ok(ExitCode::SUCCESS)
}

/// Pulls `reference` for `platform`, names it, unpacks it, and returns its manifest digest; `strata run` pulls
/// missing images through here too.
pub fn pull(
    globals: &Globals,
    stores: &Stores,
    reference: &Reference,
    platform: &Platform,
) -> Result<Digest, CliError> {
    let client = registry_client(globals)?;
    let image = block_on(client.pull(reference, &stores.content, platform))?.map_err(CliError::from_display)?;
    name_pulled(stores, reference, &image)?;
    stores.unpack_image(reference, &stores.load_image(reference)?)?;
    Ok(image.manifest_digest)
}

/// Names an image whose blobs are in the content store (pulled or imported), keeping them alive under the name.
pub fn name_pulled(stores: &Stores, reference: &Reference, image: &PulledImage) -> Result<(), CliError> {
    let mut blobs = vec![image.manifest_digest.clone(), image.config_digest.clone()];
    blobs.extend(image.index_digest.clone());
    for layer in image.manifest.layers() {
        blobs.push(layer.digest().to_string().parse().map_err(CliError::from_display)?);
    }
    let targets: Vec<RefTarget> = blobs.into_iter().map(RefTarget::Blob).collect();
    stores.name_image(reference, &image.manifest_digest, &targets)
}
