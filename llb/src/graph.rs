//! The graph container: nodes appended in dependency order, each with a Merkle digest.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::op::Op;

/// Names the canonical encoding; part of every digest so a format change can never alias old digests.
pub const ENCODING: &str = "strata.llb.v1";

/// Index of a node in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub usize);

/// blake3 over a node's canonical op encoding and its inputs' digests.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeDigest(pub [u8; 32]);

impl fmt::Display for NodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("blake3:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for NodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for NodeDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a node is for, shown to users; not part of the digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    /// Progress label, e.g. `[build 2/4] RUN make`.
    pub description: String,
    /// Stage the node belongs to, by name or index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// First Dockerfile line of the instruction the node comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Run even when the cache has a result (`--no-cache`, `--no-cache-filter`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_cache: bool,
}

/// One vertex: an op, the nodes it reads, and its digest.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Index of this node.
    pub id: NodeId,
    /// Merkle digest of op and inputs.
    pub digest: NodeDigest,
    /// The work.
    pub op: Op,
    /// The nodes whose results the op reads, referred to by index from inside the op.
    pub inputs: Vec<NodeId>,
    /// Labels for users.
    pub meta: NodeMeta,
}

/// A build graph. Nodes can only refer to nodes added before them, so the node order is a topological order,
/// and a node whose digest is already present is not added twice.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Graph {
    nodes: Vec<Node>,
    #[serde(skip)]
    by_digest: HashMap<NodeDigest, NodeId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node, or returns the existing node that does the same work (same digest).
    ///
    /// # Panics
    /// When an input is not a node of this graph: that is a bug in the caller, not bad user input.
    pub fn add(&mut self, op: Op, inputs: Vec<NodeId>, meta: NodeMeta) -> NodeId {
        assert!(inputs.iter().all(|i| i.0 < self.nodes.len()), "input of a node must be added before it");
        let digest = self.digest_of(&op, &inputs);
        if let Some(&id) = self.by_digest.get(&digest) {
            return id;
        }
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node { id, digest, op, inputs, meta });
        self.by_digest.insert(digest, id);
        id
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// All nodes in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The canonical encoding of an op: its JSON with fields in declaration order and sorted maps.
    pub fn encode(op: &Op) -> Vec<u8> {
        serde_json::to_vec(op).expect("ops contain only strings, numbers, bools and sorted maps")
    }

    /// The nodes `roots` depend on (themselves included), in topological order.
    pub fn reachable(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut needed = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(id) = stack.pop() {
            if !std::mem::replace(&mut needed[id.0], true) {
                stack.extend(&self.nodes[id.0].inputs);
            }
        }
        (0..self.nodes.len()).filter(|&i| needed[i]).map(NodeId).collect()
    }

    fn digest_of(&self, op: &Op, inputs: &[NodeId]) -> NodeDigest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(ENCODING.as_bytes());
        hasher.update(&[0]);
        let encoded = Self::encode(op);
        hasher.update(&(encoded.len() as u64).to_le_bytes());
        hasher.update(&encoded);
        for input in inputs {
            hasher.update(&self.nodes[input.0].digest.0);
        }
        NodeDigest(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExecMount, ExecOp, MountKind, NetworkMode, Platform, SecurityMode, SourceOp};

    fn image(reference: &str) -> Op {
        Op::Source(SourceOp::Image { reference: reference.into(), platform: Platform::host() })
    }

    fn exec(cmd: &str) -> Op {
        Op::Exec(ExecOp {
            args: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            network: NetworkMode::Default,
            security: SecurityMode::Sandbox,
            mounts: vec![ExecMount {
                target: "/".into(),
                input: Some(0),
                selector: None,
                readonly: false,
                output: true,
                kind: MountKind::Bind,
            }],
            proxy_env: vec![],
        })
    }

    #[test]
    fn identical_work_is_one_node_and_meta_does_not_count() {
        let mut g = Graph::new();
        let base = g.add(image("docker.io/library/busybox:latest"), vec![], NodeMeta::default());
        let a = g.add(exec("make"), vec![base], NodeMeta { description: "a".into(), ..Default::default() });
        let b = g.add(exec("make"), vec![base], NodeMeta { description: "b".into(), ..Default::default() });
        assert_eq!(a, b);
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn digest_covers_inputs() {
        let mut g = Graph::new();
        let one = g.add(image("one"), vec![], NodeMeta::default());
        let two = g.add(image("two"), vec![], NodeMeta::default());
        let a = g.add(exec("make"), vec![one], NodeMeta::default());
        let b = g.add(exec("make"), vec![two], NodeMeta::default());
        assert_ne!(g.node(a).digest, g.node(b).digest);
        assert_eq!(g.reachable(&[a]), vec![one, a]);
    }

    #[test]
    fn digest_is_stable_across_releases() {
        // Cache records are keyed by these digests: if this changes, bump ENCODING.
        let mut g = Graph::new();
        let id = g.add(image("docker.io/library/busybox:latest"), vec![], NodeMeta::default());
        let encoded = String::from_utf8(Graph::encode(&g.node(id).op)).unwrap();
        assert!(
            encoded.starts_with(r#"{"op":"source","source":"image","reference":"docker.io/library/busybox:latest""#)
        );
    }
}
