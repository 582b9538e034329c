//! `strata build`: the flags of `docker buildx build`, so users switch without relearning.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use strata_frontend::lower::{LowerOptions, Outline, StageSummary, Unresolved, lower, outline, targets};
use strata_frontend::parser::parse;
use strata_llb::Platform;
use strata_llb::patterns::{PatternMatcher, read_ignore_file};

use super::{CliError, Globals};

mod cache;
mod contexts;
mod export;
mod images;
mod output;
mod progress;
mod run_options;
mod signals;
mod solve;
mod spec;
mod ssh;

/// Build an image from a Dockerfile.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (`name:tag`); may be given several times.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: `PATH/Dockerfile`); `-` reads it from standard input.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Set a build-time variable.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Set the target build stage.
    #[arg(long)]
    pub target: Option<String>,
    /// Set the target platform (`os/arch[/variant]`).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Do not use the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the cache for these stages.
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// Secret to expose to the build (`id=mysecret[,src=/local/secret]` or `id=X,env=VAR`).
    #[arg(long = "secret", value_name = "id=ID[,src=FILE|env=VAR]")]
    pub secrets: Vec<String>,
    /// SSH agent socket or keys to expose to the build (`default|ID[=SOCKET|KEY[,KEY]]`).
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET|KEY]")]
    pub ssh: Vec<String>,
    /// Allow an extra privileged entitlement (`security.insecure`, `network.host`).
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Networking mode for RUN steps that do not set one (`default`, `none`, `host`).
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,
    /// External cache sources (`type=local,src=DIR`, `type=registry,ref=REF` or just `REF`).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Cache export destinations (`type=local,dest=DIR`, `type=registry,ref=REF`, with `mode=min|max`;
    /// `type=inline`).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Output destination (`type=image|oci|docker|local|tar,...`).
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Shorthand for `--output=type=image,push=true`.
    #[arg(long)]
    pub push: bool,
    /// How to show progress (default from `BUILDKIT_PROGRESS`, as buildx reads it).
    #[arg(long, value_enum, default_value_t = Progress::Auto, env = "BUILDKIT_PROGRESS")]
    pub progress: Progress,
    /// Set metadata for the image (`KEY=VALUE`).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Additional build contexts (`NAME=PATH|docker-image://REF|oci-layout://PATH`).
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Write build result metadata (image digest) to this file.
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Instead of building, show information about the build: `targets` or `outline` (`build` builds).
    #[arg(long, value_enum, default_value_t = Call::Build)]
    pub call: Call,
    /// Instead of building, print the lowered build graph.
    #[arg(long = "print-graph", value_enum, value_name = "FORMAT")]
    pub print_graph: Option<GraphFormat>,
    /// Build context directory.
    #[arg(value_name = "PATH", default_value = ".")]
    pub context: PathBuf,
}

/// `--progress` modes, as buildx names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// tty when standard error is a terminal, plain otherwise.
    Auto,
    /// Live view of running steps.
    Tty,
    /// BuildKit-style `#N` lines.
    Plain,
    /// One JSON object per status update.
    Rawjson,
    /// Only errors.
    Quiet,
}

/// `--call` methods, as buildx names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Call {
    /// Build the image.
    Build,
    /// List the stages with their descriptions.
    Targets,
    /// Show the build args, secrets and SSH the target uses.
    Outline,
}

/// `--print-graph` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz dot.
    Dot,
    /// JSON.
    Json,
}

/// Runs `strata build`: builds the target, or with `--call targets|outline` / `--print-graph` describes it.
pub fn run(globals: &Globals, args: &BuildArgs) -> Result<ExitCode, CliError> {
    let (path, text) = read_dockerfile(args)?;
    let name = path.display().to_string();
    let ast = parse(&text, &name).map_err(CliError::from_display)?;
    let options = lower_options(args, &path)?;
    match (args.call, args.print_graph) {
        (Call::Targets, _) => print!("{}", targets_table(&targets(&ast).map_err(CliError::from_display)?)),
        (Call::Outline, _) => print!("{}", outline_text(&outline(&ast, &options).map_err(CliError::from_display)?)),
        (Call::Build, Some(format)) => {
            let definition = lower(&ast, &options, &Unresolved).map_err(CliError::from_display)?;
            match format {
                GraphFormat::Dot => print!("{}", definition.graph.to_dot()),
                GraphFormat::Json => println!("{}", definition.graph.to_json()),
            }
        }
        (Call::Build, None) => solve::build(globals, args, &ast, &options)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The Dockerfile's path and text: `-f PATH`, `-f -` (standard input), or `CONTEXT/Dockerfile`.
fn read_dockerfile(args: &BuildArgs) -> Result<(PathBuf, String), CliError> {
    let path = args.file.clone().unwrap_or_else(|| args.context.join("Dockerfile"));
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError(format!("reading Dockerfile from stdin: {e}")))?;
        return Ok((PathBuf::from("Dockerfile"), text));
    }
    let text =
        fs::read_to_string(&path).map_err(|e| CliError(format!("reading Dockerfile {}: {e}", path.display())))?;
    Ok((path, text))
}

/// Lowering options from the flags; `.dockerignore` is `<Dockerfile>.dockerignore` beside the Dockerfile when
/// present, else the context's, as BuildKit looks them up.
fn lower_options(args: &BuildArgs, dockerfile: &Path) -> Result<LowerOptions, CliError> {
    let mut options = LowerOptions::new()
        .target(args.target.clone())
        .no_cache(args.no_cache)
        .no_cache_filter(args.no_cache_filter.clone())
        .network(run_options::network_mode(args.network.as_deref())?);
    if let Some(platform) = &args.platform {
        let platform = platform.parse::<Platform>().map_err(|e| CliError(format!("--platform: {e}")))?;
        options = options.target_platform(platform);
    }
    for arg in &args.build_args {
        // `--build-arg NAME` takes the value from the environment, as docker does.
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => match std::env::var(arg) {
                Ok(value) => (arg.clone(), value),
                Err(_) => continue,
            },
        };
        options = options.build_arg(name, value);
    }
    for label in &args.labels {
        let (name, value) = label.split_once('=').unwrap_or((label, ""));
        options = options.label(name, value);
    }
    let beside = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
    let patterns = ignore_patterns(&[beside, args.context.join(".dockerignore")]).map_err(CliError)?;
    Ok(options.ignore_patterns(patterns))
}

/// The patterns of the first of `candidates` that exists (none: no patterns), checked to compile; a file that
/// exists but cannot be read is an error, never a context sent whole.
pub(super) fn ignore_patterns(candidates: &[PathBuf]) -> Result<Vec<String>, String> {
    for path in candidates {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let patterns = read_ignore_file(&text);
        PatternMatcher::new(&patterns).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(patterns);
    }
    Ok(Vec::new())
}

/// `--call targets` output, as buildx prints it.
fn targets_table(stages: &[StageSummary]) -> String {
    let rows: Vec<[String; 2]> = stages
        .iter()
        .map(|s| {
            let name =
                if s.default && s.name != "(default)" { format!("{} (default)", s.name) } else { s.name.clone() };
            [name, s.description.clone()]
        })
        .collect();
    table(&["TARGET", "DESCRIPTION"], &rows)
}

/// `--call outline` output, as buildx prints it.
fn outline_text(outline: &Outline) -> String {
    let mut text = format!("TARGET:      {}\n", outline.target);
    if !outline.description.is_empty() {
        text.push_str(&format!("DESCRIPTION: {}\n", outline.description));
    }
    if !outline.args.is_empty() {
        let rows: Vec<[String; 3]> = outline
            .args
            .iter()
            .map(|a| [a.name.clone(), a.value.clone().unwrap_or_else(|| "<UNSET>".into()), a.description.clone()])
            .collect();
        text.push('\n');
        text.push_str(&table(&["BUILD ARG", "VALUE", "DESCRIPTION"], &rows));
    }
    for (title, list) in [("SECRET", &outline.secrets), ("SSH", &outline.ssh)] {
        if !list.is_empty() {
            let rows: Vec<[String; 2]> = list.iter().map(|s| [s.id.clone(), s.required.to_string()]).collect();
            text.push('\n');
            text.push_str(&table(&[title, "REQUIRED"], &rows));
        }
    }
    text
}

/// Left-aligned columns separated by at least three spaces.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("   ").trim_end())
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ignore_file_found_applies_and_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (beside, context) = (dir.path().join("Dockerfile.dockerignore"), dir.path().join(".dockerignore"));
        assert!(ignore_patterns(&[beside.clone(), context.clone()]).unwrap().is_empty(), "none: no patterns");
        fs::write(&context, "*.log\n").unwrap();
        assert_eq!(ignore_patterns(&[beside.clone(), context.clone()]).unwrap(), ["*.log"]);
        fs::write(&beside, "secrets/\n").unwrap();
        assert_eq!(ignore_patterns(&[beside.clone(), context.clone()]).unwrap(), ["secrets"]);
        fs::remove_file(&beside).unwrap();
        fs::create_dir(&beside).unwrap();
        let err = ignore_patterns(&[beside.clone(), context]).unwrap_err();
        assert!(err.starts_with(&format!("reading {}", beside.display())), "{err}");
    }
}
