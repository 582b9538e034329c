//! Renderings of a graph for `strata build --print-graph`: Graphviz dot and JSON.

use std::fmt::Write;

use crate::graph::Graph;
use crate::op::{FileAction, Op, SourceOp};
use crate::urls::redact_credentials;

impl Graph {
    /// The graph in Graphviz's dot language; edges point from an input to the node that reads it.
    pub fn to_dot(&self) -> String {
        let mut dot = String::from("digraph llb {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
        for node in self.nodes() {
            let label =
                if node.meta.description.is_empty() { summary(&node.op) } else { node.meta.description.clone() };
            let digest = node.digest.to_string();
            let short = &digest[..digest.len().min(19)];
            writeln!(dot, "  n{} [label=\"{}\\n{}\"];", node.id.0, escape_dot(&label), short).unwrap();
            for input in &node.inputs {
                writeln!(dot, "  n{} -> n{};", input.0, node.id.0).unwrap();
            }
        }
        dot.push_str("}\n");
        dot
    }

    /// The graph as pretty JSON: `{"nodes": [{"id", "digest", "op", "inputs", "meta"}]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("graph serialises")
    }
}

/// A one-line description of an op for nodes without a description.
fn summary(op: &Op) -> String {
    match op {
        Op::Source(SourceOp::Image { reference, .. }) => format!("image {reference}"),
        Op::Source(SourceOp::Local { name, .. }) => format!("local {name}"),
        Op::Source(SourceOp::Http { url, .. }) => format!("http {}", redact_credentials(url)),
        Op::Source(SourceOp::Git { remote, .. }) => format!("git {}", redact_credentials(remote)),
        Op::Exec(exec) => exec.args.join(" "),
        Op::File(file) => file
            .actions
            .iter()
            .map(|a| match a {
                FileAction::Copy(c) => format!("copy {} {}", c.sources.join(" "), c.dest),
                FileAction::Mkdir { path, .. } => format!("mkdir {path}"),
                FileAction::Mkfile { path, .. } => format!("mkfile {path}"),
                FileAction::Rm { path, .. } => format!("rm {path}"),
                FileAction::Symlink { target, link } => format!("symlink {link} -> {target}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Op::Merge => "merge".into(),
    }
}

fn escape_dot(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeMeta, Platform};

    #[test]
    fn dot_has_nodes_and_edges() {
        let mut g = Graph::new();
        let base = g.add(
            Op::Source(SourceOp::Image { reference: "busybox".into(), platform: Platform::host() }),
            vec![],
            NodeMeta::default(),
        );
        g.add(Op::Merge, vec![base], NodeMeta { description: "say \"hi\"".into(), ..Default::default() });
        let dot = g.to_dot();
        assert!(dot.contains("n0 [label=\"image busybox\\nblake3:"), "{dot}");
        assert!(dot.contains("n1 [label=\"say \\\"hi\\\"\\n"), "{dot}");
        assert!(dot.contains("n0 -> n1;"));
        let json: serde_json::Value = serde_json::from_str(&g.to_json()).unwrap();
        assert_eq!(json["nodes"][1]["inputs"][0], 0);
    }
}
