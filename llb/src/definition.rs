//! What a frontend hands to the solver and exporter: the graph, the node holding the target's filesystem, and
//! the image configuration and history to write beside it.

use serde::Serialize;

use crate::graph::{Graph, NodeId};
use crate::image::{HistoryEntry, ImageConfig, Platform};

/// A lowered build: everything needed to produce the target stage's image.
#[derive(Debug, Clone, Serialize)]
pub struct Definition {
    /// All work the target needs (and nothing else).
    pub graph: Graph,
    /// The node whose result is the target's root filesystem; `None` for an empty (scratch) image.
    pub root: Option<NodeId>,
    /// The image the target stage starts from, whose layers and history come first.
    pub base: Option<BaseImage>,
    /// The target's own steps after the base, in order; each is one history entry and maybe one layer.
    pub steps: Vec<LayerStep>,
    /// The image configuration of the result.
    pub config: ImageConfig,
    /// The platform the image is for.
    pub platform: Platform,
}

/// An image a stage is built on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaseImage {
    /// Normalised reference, as the image source op names it.
    pub reference: String,
    /// The image source node.
    pub node: NodeId,
}

/// One build step of the target stage, as it appears in the image history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerStep {
    /// The node whose result the step leaves; its layer is the diff from the previous step's node. `None` for
    /// config-only steps (ENV, LABEL, ...), which add an empty-layer history entry.
    pub node: Option<NodeId>,
    /// The history entry to write.
    pub history: HistoryEntry,
}
