//! `strata parse`: parses a Dockerfile and prints its syntax tree.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::CliError;

/// Options of `strata parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The Dockerfile to parse.
    #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
    file: PathBuf,
    /// How to print the syntax tree.
    #[arg(long, value_enum, default_value_t = Format::Buildkit)]
    format: Format,
}

/// Output formats of `strata parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// The stable JSON form documented in `strata_frontend::parser`.
    Json,
    /// BuildKit's `Node.Dump()` text, one instruction per line.
    Buildkit,
}

/// Parses the file and prints the tree in the chosen format to stdout.
pub fn run(args: &ParseArgs) -> Result<ExitCode, CliError> {
    let source =
        std::fs::read_to_string(&args.file).map_err(|e| CliError(format!("reading {}: {e}", args.file.display())))?;
    let ast =
        strata_frontend::parser::parse(&source, &args.file.display().to_string()).map_err(CliError::from_display)?;
    match args.format {
        Format::Json => println!("{}", ast.to_json()),
        Format::Buildkit => println!("{}", ast.dump()),
    }
    Ok(ExitCode::SUCCESS)
}
