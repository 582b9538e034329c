//! Storage under every strata build: a content store of blobs addressed by sha256, a metadata database shared by
//! concurrent `strata` processes, snapshots (overlayfs or plain copies), the diff/apply of OCI layers, and the
//! unpacking of images into snapshots.

pub mod content;
pub mod digest;
mod error;
mod fsmeta;
pub mod gc;
pub mod layer;
pub mod metadata;
pub mod mount;
pub mod snapshot;
pub mod unpack;

pub use content::{BlobWriter, ContentStore};
pub use digest::Digest;
pub use error::{Error, Result};
pub use fsmeta::read_xattrs;
pub use gc::{DiskUsage, PruneOptions, PruneReport, disk_usage, prune};
pub use layer::LayerDescriptor;
pub use layer::apply::{Applied, apply, apply_blob};
pub use layer::compress::Compression;
pub use layer::convert::recompress;
pub use layer::diff::{DiffOptions, diff, tar_tree};
pub use metadata::{CacheRecord, ImageRecord, MetadataStore, RefTarget, SnapshotKind, SnapshotRecord};
pub use mount::{Mount, MountGuard, mount_all, unmount};
pub use snapshot::{SnapshotLayout, Snapshotter, SnapshotterKind, Usage};
pub use unpack::{chain_ids, snapshot_key_of, unpack, unpack_referenced};
