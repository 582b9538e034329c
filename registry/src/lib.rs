//! A thin OCI distribution client: references, pull, push, cross-repository mounts and docker-compatible auth,
//! streaming blobs through the content store rather than holding them in memory.

mod auth;
mod client;
mod config;
mod credentials;
mod error;
mod layout;
pub mod manifest;
mod platform;
mod pull;
mod push;
mod reference;
mod transport;

pub use auth::{Challenge, Scope};
pub use client::{RegistryClient, RegistryClientBuilder};
pub use config::{HostConfig, RegistryConfig};
pub use credentials::{CredentialStore, Credentials};
pub use error::{Error, Result};
pub use layout::{import_layout, layout_blob, layout_manifest};
pub use platform::Platform;
pub use pull::PulledImage;
pub use reference::Reference;
pub use transport::RetryPolicy;
