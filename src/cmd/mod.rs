//! The subcommands, one module each. Every `run` returns the process exit code or a `CliError`.

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
