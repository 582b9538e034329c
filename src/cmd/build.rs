//! `strata build`: the flags of `docker buildx build`, so users switch without relearning.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
    /// External cache sources (`type=local,src=DIR`, `type=registry,ref=REF`).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Cache export destinations (`type=local,dest=DIR`, `type=registry,ref=REF`, `type=inline`).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Output destination (`type=image|oci|docker|local|tar,...`).
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Shorthand for `--output=type=image,push=true`.
    #[arg(long)]
    pub push: bool,
    /// How to show progress.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
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
