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
    /// Pull an image from a registry.
    Pull(cmd::pull::Args),
    /// Push an image to a registry.
    Push(cmd::push::Args),
    /// List images.
    Images(cmd::images::Args),
    /// Give an image another name.
    Tag(cmd::tag::Args),
    /// Remove image names.
    Rmi(cmd::rmi::Args),
    /// Print an image's manifest and config.
    Inspect(cmd::inspect::Args),
    /// Save credentials for a registry.
    Login(cmd::login::LoginArgs),
    /// Forget credentials for a registry.
    Logout(cmd::login::LogoutArgs),
    /// Run a command in a new container over an image.
    Run(cmd::run::RunArgs),
    /// Remove build cache and unused data.
    Prune(cmd::prune::Args),
    /// Show disk use.
    Du(cmd::du::Args),
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
        Command::Build(args) => cmd::build::run(&cli.globals, &args),
        Command::Parse(args) => cmd::parse::run(&args),
        Command::Pull(args) => cmd::pull::run(&cli.globals, args),
        Command::Push(args) => cmd::push::run(&cli.globals, args),
        Command::Images(args) => cmd::images::run(&cli.globals, args),
        Command::Tag(args) => cmd::tag::run(&cli.globals, args),
        Command::Rmi(args) => cmd::rmi::run(&cli.globals, args),
        Command::Inspect(args) => cmd::inspect::run(&cli.globals, args),
        Command::Login(args) => cmd::login::run_login(&cli.globals, args),
        Command::Logout(args) => cmd::login::run_logout(&cli.globals, args),
        Command::Run(args) => cmd::run::run(&cli.globals, args),
        Command::Prune(args) => cmd::prune::run(&cli.globals, args),
        Command::Du(args) => cmd::du::run(&cli.globals, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
