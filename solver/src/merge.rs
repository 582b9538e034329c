//! Merge: inputs layered in order, later over earlier. The first non-empty input is the parent of the new
//! snapshot; the others are copied on top, owners and modes kept.

use std::sync::Arc;

use strata_snapshotter::Snapshotter;

use crate::error::Result;
use crate::file::copy_tree;
use crate::snapshot::{ActiveTree, ReadTree};

/// Layers `inputs` (snapshot keys, `None` for empty trees) into a new, uncommitted snapshot.
pub(crate) fn run(snapshotter: &Arc<dyn Snapshotter>, inputs: &[Option<String>]) -> Result<ActiveTree> {
    let mut layers = inputs.iter().flatten();
    let mut merged = ActiveTree::prepare(snapshotter, layers.next().map(String::as_str))?;
    let dest = merged.mount()?;
    for layer in layers {
        let tree = ReadTree::open(snapshotter, Some(layer))?;
        copy_tree(tree.path(), &dest)?;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_trees_win() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(a.path().join("f"), "a").unwrap();
        std::fs::write(b.path().join("f"), "b").unwrap();
        std::fs::write(b.path().join("g"), "g").unwrap();
        copy_tree(b.path(), a.path()).unwrap();
        assert_eq!(std::fs::read_to_string(a.path().join("f")).unwrap(), "b");
        assert!(a.path().join("g").is_file());
    }
}
