//! The exporter assembles OCI images from solved builds and writes them as an OCI layout, a tarball of one, or
//! a plain directory.
//!
//! [`assemble`] turns a solved [`strata_llb::Definition`] into an image in the content store: the base image's
//! layers as they are, one layer per step that changed the filesystem, the config and the manifest, encoded as
//! its [`ImageFormat`] says. The writers ([`write_oci_layout`], [`write_oci_tar`], [`write_docker_tar`],
//! [`write_local`]) then stream its blobs out; [`write_tar_fs`] streams the build result's filesystem.

pub mod cache;
mod format;
mod image;
mod local;
mod oci_layout;

pub use format::{DOCKER_CONFIG, DOCKER_MANIFEST, ImageFormat};
pub use image::{ExportOptions, Image, assemble, rfc3339};
pub use local::{write_local, write_tar_fs};
pub use oci_layout::{write_docker_tar, write_docker_tar_to, write_oci_layout, write_oci_tar, write_oci_tar_to};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The content store, metadata or a snapshot failed.
    #[error("{context}: {source}")]
    Store {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: strata_snapshotter::Error,
    },
    /// A snapshot could not be opened.
    #[error("{context}: {source}")]
    Snapshot {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: Box<strata_solver::Error>,
    },
    /// An OCI document could not be built or parsed.
    #[error("{context}: {reason}")]
    Oci {
        /// Which document.
        context: String,
        /// What went wrong.
        reason: String,
    },
    /// A cache could not be read from or written to a registry or layout.
    #[error("{context}: {source}")]
    Registry {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: Box<strata_registry::Error>,
    },
    /// The solve result lacks something the image needs, or has a shape not exported yet.
    #[error("{0}")]
    Unsupported(String),
}

/// Results of exporter operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps io errors with context.
pub(crate) fn io_error(context: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context: context(), source }
}

/// Wraps store errors with context.
pub(crate) fn store_error(context: impl FnOnce() -> String) -> impl FnOnce(strata_snapshotter::Error) -> Error {
    move |source| Error::Store { context: context(), source }
}
