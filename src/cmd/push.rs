//! `strata push REF`: upload a named image (or one given by manifest digest) to a registry.

use std::process::ExitCode;

use strata_registry::Reference;
use strata_snapshotter::Digest;

use super::store::{Stores, block_on, reference, registry_client};
use super::{CliError, Globals};

/// Arguments of `strata push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to push; also the local image name unless `--source` or `--digest` says otherwise.
    pub reference: String,
    /// Push the local image with this name instead.
    #[arg(long, conflicts_with = "digest")]
    pub source: Option<String>,
    /// Push the manifest (or index) with this digest from the content store.
    #[arg(long)]
    pub digest: Option<String>,
}

/// Pushes the image and prints the pushed digest.
pub fn run(globals: &Globals, args: Args) -> Result<ExitCode, CliError> {
    let target = reference(&args.reference)?;
    let stores = Stores::open(globals)?;
    let source = args.source.as_deref().map(reference).transpose()?;
    let manifest = match &args.digest {
        Some(digest) => digest.parse::<Digest>().map_err(CliError::from_display)?,
        None => stores.image(source.as_ref().unwrap_or(&target))?,
    };
    push_image(globals, &stores, &manifest, &target, source.as_ref())?;
    Ok(ExitCode::SUCCESS)
}

/// Uploads `manifest` from the content store to `target` with the `--config` registry settings, and prints the
/// pushed digest; `strata push` and `strata build --push` both push through here.
pub fn push_image(
    globals: &Globals,
    stores: &Stores,
    manifest: &Digest,
    target: &Reference,
    source: Option<&Reference>,
) -> Result<(), CliError> {
    let client = registry_client(globals)?;
    // A source image from the same registry can have its blobs mounted instead of uploaded.
    let pushed = block_on(client.push(&stores.content, manifest, target, source))?.map_err(CliError::from_display)?;
    println!("{target}: {pushed}");
    Ok(())
}
