//! The runtime runs a process over an image's root filesystem in new Linux namespaces, for RUN steps and
//! `strata run`, without a daemon or another engine.
//!
//! The caller builds a [`ProcessSpec`] and hands it to a [`Runtime`], which re-executes an init program (strata
//! itself, see [`run_init_if_requested`]) that sets up the namespaces and mounts single-threaded and execs the
//! command as PID 1 of a new PID namespace.

#![warn(missing_docs)]

mod capabilities;
mod devices;
mod error;
mod handoff;
mod init;
mod mounts;
mod namespaces;
mod process;
mod rootfs;
mod rootless;
mod spec;
mod user;

pub use error::{Error, Result};
pub use init::{INIT_ARG, run_init_if_requested};
pub use nix::sys::signal::Signal;
pub use process::{Completed, Container, Runtime};
pub use spec::{DEFAULT_PATH, Network, ProcessSpec, ProcessSpecBuilder, RlimitResource, Rootfs};
pub use strata_snapshotter::mount::Mount;
pub use user::{lookup_group, lookup_user};
