//! `strata inspect REF`: print a local image's manifest and config as JSON.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::store::{Stores, reference};
use super::{CliError, Globals};

/// Arguments of `strata inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image name.
    pub reference: String,
}

/// Prints `{name, digest, manifest, config}`; for an index, `manifest` is the index and `config` is null.
pub fn run(globals: &Globals, args: Args) -> Result<ExitCode, CliError> {
    let reference = reference(&args.reference)?;
    let stores = Stores::open(globals)?;
    let digest = stores.image(&reference)?;
    let manifest = stores.read_json(&digest)?;
    let config = match manifest["config"]["digest"].as_str() {
        Some(config) => stores.read_json(&config.parse().map_err(CliError::from_display)?)?,
        None => Value::Null,
    };
    let out = json!({"name": reference.to_string(), "digest": digest, "manifest": manifest, "config": config});
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON values serialize"));
    Ok(ExitCode::SUCCESS)
}
