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
    /// Run a command in a new container over an image.
    Run(cmd::run::RunArgs),
}

fn main() -> ExitCode {
    // `strata __init` is the container init the runtime re-executes; it must start before any thread does.
    strata_runtime::run_init_if_requested();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("STRATA_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result: Result<ExitCode, cmd::CliError> = match cli.command {
        Command::Run(args) => cmd::run::run(&cli.globals, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
