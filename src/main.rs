//! `strata`: a daemonless container image builder.

use clap::Parser;

/// A daemonless container image builder.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
