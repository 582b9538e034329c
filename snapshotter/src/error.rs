use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the snapshotter crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O call failed; `context` says what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A digest string is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest(String),
    /// Written content does not hash to the digest it was announced with.
    #[error("content verification failed: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// Written content does not have the size it was announced with.
    #[error("content size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch { digest: String, expected: u64, actual: u64 },
    /// A blob was asked for that the store does not hold.
    #[error("blob {0} not found in the content store")]
    BlobNotFound(String),
    /// A metadata database call failed; `context` says what was being done.
    #[error("metadata database: {context}: {source}")]
    Database {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A snapshot key is already taken.
    #[error("snapshot {0} already exists")]
    SnapshotExists(String),
    /// A snapshot was asked for that does not exist (in the state needed).
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    /// A snapshot cannot be removed while others are built on it.
    #[error("snapshot {key} is the parent of {children} other snapshot(s); remove them first")]
    SnapshotInUse { key: String, children: u64 },
    /// A mount has a filesystem type strata cannot mount.
    #[error("unsupported mount type {0:?}: strata mounts overlay and bind")]
    UnsupportedMount(String),
    /// A snapshotter name is neither `overlayfs` nor `native`.
    #[error("unknown snapshotter {0:?}: expected overlayfs or native")]
    UnknownSnapshotter(String),
    /// A snapshot operation does not fit the snapshot's state (e.g. committing a view).
    #[error("snapshot {key}: {reason}")]
    SnapshotState { key: String, reason: String },
    /// An option value is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// A layer entry is unsafe or malformed and the layer is refused.
    #[error("layer entry {entry:?}: {reason}")]
    BadEntry { entry: String, reason: String },
    /// Applying a layer entry failed.
    #[error("layer entry {entry:?}: {context}: {source}")]
    Apply {
        entry: String,
        context: String,
        #[source]
        source: io::Error,
    },
}

/// The snapshotter crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds a description of the failed action to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { context: what(), source })
    }
}

/// Formats a path for an error message.
pub(crate) fn show(path: &std::path::Path) -> String {
    PathBuf::from(path).display().to_string()
}
