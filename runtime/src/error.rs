//! The one error type of the runtime; every message says what was being done and to what.

use std::time::Duration;

/// Everything that can go wrong preparing, starting or running a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec asks for something the runtime cannot do.
    #[error("invalid process spec: {0}")]
    InvalidSpec(String),
    /// A file or pipe operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{context}: {source}")]
    Sys {
        /// What was being done.
        context: String,
        /// The errno.
        source: nix::Error,
    },
    /// The user or group named in the spec does not exist in the rootfs.
    #[error("resolving user {user:?} in the container's /etc/passwd and /etc/group: {reason}")]
    User {
        /// The user spec as given (`name`, `uid`, `name:group`, `uid:gid`).
        user: String,
        /// Why it could not be resolved.
        reason: String,
    },
    /// Running without root needs something this machine does not offer.
    #[error("rootless container: {0}")]
    Rootless(String),
    /// The container's init failed before the command started; the message comes from inside the container.
    #[error("starting the container: {0}")]
    Setup(String),
    /// The init and the caller could not understand each other.
    #[error("{context}: {source}")]
    Handoff {
        /// What was being sent or read.
        context: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The command ran longer than allowed and the whole container was killed.
    #[error("the command ran longer than {0:?}; the container was killed")]
    TimedOut(Duration),
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds "what was being done" to io and errno results.
pub(crate) trait Context<T> {
    /// Wraps the error with a message made only when there is an error.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { context: what(), source })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys { context: what(), source })
    }
}
