//! `strata`: a daemonless container image builder.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A daemonless container image builder.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
struct Cli {
    #[command(flatten)]
    globals: cmd::Globals,
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each lives in its own module under `cmd/`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<cmd::build::BuildArgs>),
    /// Parse a Dockerfile and print its syntax tree.
    Parse(cmd::parse::ParseArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("STRATA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result: Result<ExitCode, cmd::CliError> = match cli.command {
        Command::Build(args) => cmd::build::run(&args),
        Command::Parse(args) => cmd::parse::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
