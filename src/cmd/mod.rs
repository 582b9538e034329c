//! The subcommands, one module each. Every `run` returns the process exit code or a `CliError`.

pub mod build;
pub mod du;
pub mod images;
pub mod inspect;
pub mod login;
pub mod parse;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod run;
mod store;
pub mod tag;

use std::path::PathBuf;

use strata_snapshotter::SnapshotterKind;

/// Options every subcommand takes, as `docker buildx` and buildkitd users know them.
#[derive(Debug, clap::Args)]
pub struct Globals {
    /// State directory: content store, metadata database, snapshots and cache.
    #[arg(long, global = true, env = "STRATA_ROOT", default_value_os_t = default_root())]
    pub root: PathBuf,
    /// Registry configuration in buildkitd.toml's shape (`[registry."host"] mirrors, http, insecure, ca`).
    #[arg(long, global = true, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,
    /// How images are unpacked: `overlayfs` or `native`; overlayfs when the kernel can mount it under `--root`.
    #[arg(long, global = true, env = "STRATA_SNAPSHOTTER")]
    pub snapshotter: Option<SnapshotterKind>,
}

/// `/var/lib/strata` for root, `$XDG_DATA_HOME/strata` (or `~/.local/share/strata`) for other users.
fn default_root() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/strata");
    }
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("strata")
}

/// An error a subcommand reports to the user; its message already carries the context.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    /// Wraps any error whose message already says what failed.
    pub fn from_display(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}
