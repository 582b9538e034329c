//! `strata rmi REF...`: remove image names; their blobs go when GC finds them unreferenced.

use std::process::ExitCode;

use strata_snapshotter::metadata::image_owner;

use super::store::{Stores, reference};
use super::{CliError, Globals};

/// Arguments of `strata rmi`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image names to remove.
    #[arg(required = true)]
    pub references: Vec<String>,
}

/// Removes each name; an unknown name is an error after the others are removed.
pub fn run(globals: &Globals, args: Args) -> Result<ExitCode, CliError> {
    let stores = Stores::open(globals)?;
    let mut missing = Vec::new();
    for input in &args.references {
        let name = reference(input)?.to_string();
        stores.metadata.remove_refs(&image_owner(&name)).map_err(CliError::from_display)?;
        if stores.metadata.delete_image(&name).map_err(CliError::from_display)? {
            println!("Untagged: {name}");
        } else {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError(format!("no such image: {}", missing.join(", "))))
    }
}
