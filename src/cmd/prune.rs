//! `strata prune`: remove build cache and what nothing uses any more, like `docker buildx prune`.

use std::process::ExitCode;
use std::time::Duration;

use strata_snapshotter::PruneOptions;

use super::store::Stores;
use super::{CliError, Globals};

/// Options of `strata prune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also remove snapshots left active by builds that never finished, cache mounts no build is using and the
    /// remembered context digests.
    #[arg(long)]
    all: bool,
    /// Stop once the cache uses at most this much disk (e.g. 10GB, 512MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    keep_storage: Option<u64>,
    /// Only remove what matches: `until=DURATION` (e.g. until=24h) keeps what was used more recently.
    #[arg(long, value_name = "FILTER", value_parser = parse_filter)]
    filter: Vec<Duration>,
}

/// Runs `strata prune`.
pub fn run(globals: &Globals, args: Args) -> Result<ExitCode, CliError> {
    let stores = Stores::open(globals)?;
    let mut options = PruneOptions::new().all(args.all);
    if let Some(bytes) = args.keep_storage {
        options = options.keep_storage(bytes);
    }
    if let Some(until) = args.filter.into_iter().max() {
        options = options.until(until);
    }
    let report = strata_snapshotter::prune(
        &globals.root,
        &stores.metadata,
        &stores.content,
        stores.snapshotter.as_ref(),
        &options,
    )
    .map_err(CliError::from_display)?;
    for key in &report.cache_records {
        println!("cache\t{key}");
    }
    for key in &report.snapshots {
        println!("snapshot\t{key}");
    }
    for digest in &report.blobs {
        println!("blob\t{digest}");
    }
    let mut reclaimed = report.reclaimed;
    if args.all {
        let state = strata_solver::prune(&globals.root).map_err(CliError::from_display)?;
        for dir in &state.cache_mounts {
            println!("cache-mount\t{}", dir.display());
        }
        for record in &state.context_records {
            println!("context-record\t{}", record.display());
        }
        reclaimed += state.reclaimed;
    }
    println!("Total:\t{}", human_size(reclaimed));
    Ok(ExitCode::SUCCESS)
}

/// Parses a size as Docker does: a number with an optional B, K/KB/KiB, M/MB/MiB, G/GB/GiB or T/TB/TiB
/// suffix, all powers of 1024.
fn parse_size(s: &str) -> Result<u64, String> {
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("invalid size {s:?}: expected e.g. 10GB or 512MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!("invalid size unit {other:?} in {s:?}: expected B, KB, MB, GB or TB"));
        }
    };
    Ok((number * (1u64 << shift) as f64) as u64)
}

/// Parses `until=DURATION`, the one filter prune supports.
fn parse_filter(s: &str) -> Result<Duration, String> {
    match s.split_once('=') {
        Some(("until", duration)) => parse_duration(duration),
        _ => Err(format!("unsupported filter {s:?}: expected until=DURATION (e.g. until=24h)")),
    }
}

/// Parses a Go-style duration such as `24h`, `1h30m`, `90s` (and `7d`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {s:?}: expected e.g. 24h, 1h30m, 90s or 7d");
    let (mut total, mut rest) = (0u64, s);
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        let unit_len = rest[digits..].find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len() - digits);
        let seconds = match &rest[digits..digits + unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(invalid()),
        };
        total += value * seconds;
        rest = &rest[digits + unit_len..];
    }
    Ok(Duration::from_secs(total))
}

/// Formats bytes the way `docker buildx du` does: 1.5GB, 12.3MB, 512B (powers of 1000).
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes}B") } else { format!("{value:.3}{}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_like_docker() {
        assert_eq!(parse_size("10GB").unwrap(), 10 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("42").unwrap(), 42);
        assert!(parse_size("10XB").is_err());
        assert_eq!(parse_filter("until=1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse_filter("label=x").is_err());
        assert!(parse_duration("10").is_err());
        assert_eq!(human_size(1_500_000), "1.500MB");
    }
}
