//! The crate's one error type. Every variant names what it was doing and where: registry, repository, digest or
//! URL, so a message read on its own says what failed.

use std::path::PathBuf;

/// Everything that can go wrong talking to a registry, reading its configuration or storing what it sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image reference does not follow Docker's grammar.
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// A platform string is not `os/arch[/variant]`.
    #[error("invalid platform {platform:?}: expected os/arch[/variant]")]
    InvalidPlatform { platform: String },
    /// The registry configuration file cannot be read or parsed.
    #[error("registry config {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    /// An extra CA certificate cannot be loaded or the HTTP client cannot be built for a registry.
    #[error("{registry}: setting up the HTTP client: {reason}")]
    Client { registry: String, reason: String },
    /// A request failed on the wire (connect, reset, timeout, broken body) after every retry.
    #[error("{method} {url}: {source}")]
    Http {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A response body broke off (reset, truncation, stall) after its headers arrived.
    #[error("{url}: response body broke off: {source}")]
    Body {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("{url}: registry answered {status}{}", body_suffix(body))]
    Status { url: String, status: u16, body: String },
    /// Authentication failed: no usable challenge, a token issuer refused, or credentials were rejected.
    #[error("{registry}: authentication for {scope} failed: {reason}")]
    Auth { registry: String, scope: String, reason: String },
    /// Credentials cannot be read or written (config file, credential helper).
    #[error("credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },
    /// Received content does not match the digest or size it was announced with.
    #[error("{registry}/{repository}: {digest} failed verification: {reason}")]
    Verification { registry: String, repository: String, digest: String, reason: String },
    /// A manifest or index is malformed, of an unsupported type, or has no entry for the wanted platform.
    #[error("{registry}/{repository}: manifest {reference}: {reason}")]
    Manifest { registry: String, repository: String, reference: String, reason: String },
    /// An OCI image layout directory cannot be read, names no such image, or holds a blob that fails verification.
    #[error("OCI layout {}: {reason}", path.display())]
    Layout { path: PathBuf, reason: String },
    /// The content store failed while storing or reading a blob.
    #[error("content store: {context}: {source}")]
    Store {
        context: String,
        #[source]
        source: strata_snapshotter::Error,
    },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(": {body}") }
}

impl Error {
    /// An I/O call on a content-store blob failed; `context` says which blob and what was being done.
    pub(crate) fn store_io(context: String, source: std::io::Error) -> Self {
        Self::Store { source: strata_snapshotter::Error::Io { context: "I/O".into(), source }, context }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to a content-store result.
pub(crate) trait StoreContext<T> {
    fn store_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> StoreContext<T> for Result<T, strata_snapshotter::Error> {
    fn store_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Store { context: what(), source })
    }
}
