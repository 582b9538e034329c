//! The solver's one error type; every variant says which step or path it is about.

use std::path::PathBuf;

/// Why a solve failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A RUN step exited non-zero; worded as BuildKit words it.
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    ProcessFailed {
        /// The command line, arguments joined by spaces.
        command: String,
        /// Its exit code.
        code: i32,
    },
    /// A file system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The snapshotter or stores failed.
    #[error("{context}: {source}")]
    Store {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: strata_snapshotter::Error,
    },
    /// The container runtime failed to start or watch a process.
    #[error("running {command:?}: {source}")]
    Runtime {
        /// The command line.
        command: String,
        /// The underlying error.
        source: strata_runtime::Error,
    },
    /// A COPY/ADD source matched nothing.
    #[error("failed to compute cache key: \"{path}\": not found")]
    SourceNotFound {
        /// The source as written.
        path: String,
    },
    /// The op asks for something the solver does not do yet.
    #[error("{0} is not supported yet")]
    Unsupported(String),
    /// A build input was not given (context, secret, image).
    #[error("{0}")]
    MissingInput(String),
    /// An image could not be resolved or unpacked.
    #[error("image {reference}: {reason}")]
    Image {
        /// The image reference.
        reference: String,
        /// What went wrong.
        reason: String,
    },
    /// A user or group name in `--chown` is not in the destination's `/etc/passwd` or `/etc/group`.
    #[error("unable to find {kind} {name:?} in {file}")]
    UnknownOwner {
        /// `user` or `group`.
        kind: &'static str,
        /// The name looked up.
        name: String,
        /// The file searched.
        file: PathBuf,
    },
    /// A pattern (exclude, wildcard, chmod) is malformed.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// What kind of value.
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A step needs an entitlement the build was not granted; worded as BuildKit words it.
    #[error("{step}: {entitlement} is not allowed (grant it with --allow {entitlement})")]
    NotAllowed {
        /// The step's description.
        step: String,
        /// `security.insecure`.
        entitlement: &'static str,
    },
    /// A remote source (URL or git repository) could not be fetched; `url` has its password redacted.
    #[error("{url}: {reason}")]
    Remote {
        /// Where it was fetched from.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A download does not match the checksum it was pinned with (`ADD --checksum`), worded as BuildKit words it.
    #[error("digest mismatch for {url}: {actual} (expected: {expected})")]
    ChecksumMismatch {
        /// The URL, password redacted.
        url: String,
        /// The pinned checksum.
        expected: String,
        /// The downloaded content's digest.
        actual: String,
    },
    /// A worker task panicked (a bug; this keeps the message).
    #[error("a solver task panicked while these steps were unfinished: {steps}: {reason}")]
    Task {
        /// The descriptions of the unfinished steps.
        steps: String,
        /// The panic or cancellation.
        reason: String,
    },
}

/// Results of solver operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to io errors.
pub(crate) trait IoContext<T> {
    /// Wraps the error with the message `context` builds.
    fn io_context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { context: context(), source })
    }
}

/// Adds context to store errors.
pub(crate) trait StoreContext<T> {
    /// Wraps the error with the message `context` builds.
    fn store_context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> StoreContext<T> for strata_snapshotter::Result<T> {
    fn store_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Store { context: context(), source })
    }
}
