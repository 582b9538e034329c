//! `strata tag SRC DST`: give an image another name.

use std::process::ExitCode;

use super::store::{Stores, reference};
use super::{CliError, Globals};

/// Arguments of `strata tag`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The existing image name.
    pub source: String,
    /// The new name.
    pub target: String,
}

/// Points `target` at the manifest `source` points at, keeping the same blobs and snapshots alive.
pub fn run(globals: &Globals, args: Args) -> Result<ExitCode, CliError> {
    let (source, target) = (reference(&args.source)?, reference(&args.target)?);
    let stores = Stores::open(globals)?;
    let manifest = stores.image(&source)?;
    stores.name_image(&target, &manifest, &stores.image_refs(&source)?)?;
    Ok(ExitCode::SUCCESS)
}
