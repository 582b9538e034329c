//! `strata images`: list image names and the manifests they point at.

use std::process::ExitCode;

use super::store::Stores;
use super::{CliError, Globals};

/// Arguments of `strata images`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print only the names.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Prints one line per image name.
pub fn run(globals: &Globals, args: Args) -> Result<ExitCode, CliError> {
    let stores = Stores::open(globals)?;
    let images = stores.metadata.images().map_err(CliError::from_display)?;
    if !args.quiet {
        println!("{:<60} {:<71} SIZE", "NAME", "DIGEST");
    }
    for image in images {
        if args.quiet {
            println!("{}", image.name);
            continue;
        }
        let size = stores.content.size(&image.manifest).map(|s| s.to_string()).unwrap_or_else(|_| "missing".into());
        println!("{:<60} {:<71} {size}", image.name, image.manifest.to_string());
    }
    Ok(ExitCode::SUCCESS)
}
