//! The build graph shared by the frontend (which produces it) and the solver (which runs it): source, exec,
//! file and merge ops, each with a stable canonical encoding and digest, plus the image configuration a
//! build produces alongside its filesystem.
//!
//! The graph is a Merkle DAG: a node's digest covers its op and its inputs' digests, so two nodes with the same
//! digest do the same work and the graph stores them once.

mod definition;
mod graph;
mod image;
mod op;
pub mod patterns;
mod render;
pub mod urls;

pub use definition::{BaseImage, Definition, LayerStep};
pub use graph::{Graph, Node, NodeDigest, NodeId, NodeMeta};
pub use image::{HealthConfig, HistoryEntry, ImageConfig, Platform};
pub use op::{
    CacheSharing, Chown, CopyAction, ExecMount, ExecOp, FileAction, FileOp, MountKind, NetworkMode, Op, SecurityMode,
    SourceOp,
};
