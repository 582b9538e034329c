//! `strata du`: disk use by images, cache records, snapshots and blobs, like `docker buildx du`.

use std::process::ExitCode;
use std::time::SystemTime;

use super::prune::human_size;
use super::store::Stores;
use super::{CliError, Globals};

/// Options of `strata du`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// List every cache record, snapshot and blob, not just the totals.
    #[arg(long)]
    verbose: bool,
}

/// Runs `strata du`.
pub fn run(globals: &Globals, args: Args) -> Result<ExitCode, CliError> {
    let stores = Stores::open(globals)?;
    let usage = strata_snapshotter::disk_usage(&stores.metadata, &stores.content, stores.snapshotter.as_ref())
        .map_err(CliError::from_display)?;
    println!("{:<60} {:>12}", "IMAGE", "SIZE");
    for (name, size) in &usage.images {
        println!("{name:<60} {:>12}", human_size(*size));
    }
    if args.verbose {
        println!("\n{:<60} {:>12} {:>14}", "CACHE KEY", "SIZE", "LAST USED");
        for (record, size) in &usage.cache {
            println!("{:<60} {:>12} {:>14}", record.key, human_size(*size), ago(record.last_used));
        }
        println!("\n{:<40} {:<10} {:>12} {:>14}", "SNAPSHOT", "KIND", "SIZE", "LAST USED");
        for (record, size) in &usage.snapshots {
            let (key, kind) = (&record.key, record.kind.as_str());
            println!("{key:<40} {kind:<10} {:>12} {:>14}", human_size(*size), ago(record.last_used));
        }
        println!("\n{:<72} {:>12} {:>6}", "BLOB", "SIZE", "LIVE");
        for (digest, size, live) in &usage.blobs {
            println!("{:<72} {:>12} {:>6}", digest.to_string(), human_size(*size), live);
        }
    }
    let cache: u64 = usage.cache.iter().map(|c| c.1).sum();
    let snapshots: u64 = usage.snapshots.iter().map(|s| s.1).sum();
    let blobs: u64 = usage.blobs.iter().map(|b| b.1).sum();
    println!();
    println!("Cache records:\t{} ({})", usage.cache.len(), human_size(cache));
    println!("Snapshots:\t{} ({})", usage.snapshots.len(), human_size(snapshots));
    println!("Blobs:\t\t{} ({})", usage.blobs.len(), human_size(blobs));
    println!("Reclaimable:\t{}", human_size(usage.reclaimable));
    println!("Total:\t\t{}", human_size(usage.total()));
    Ok(ExitCode::SUCCESS)
}

/// How long ago `time` was, roughly: `3 hours ago`.
fn ago(time: SystemTime) -> String {
    let secs = time.elapsed().map_or(0, |d| d.as_secs());
    let (n, unit) = match secs {
        0..60 => (secs, "second"),
        60..3600 => (secs / 60, "minute"),
        3600..86400 => (secs / 3600, "hour"),
        _ => (secs / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}
