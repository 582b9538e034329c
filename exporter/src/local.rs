//! `type=local`: the image's filesystem written to a directory, by applying its layers in order (so whiteouts
//! of later steps remove what earlier ones made, exactly as in a container).
//! `type=tar`: the build result's filesystem as one tar stream, read from its snapshot by the same tar walk
//! that makes layers, so nothing is compressed or extracted on the way.

use std::fs;
use std::io::Write;
use std::path::Path;

use strata_snapshotter::{ContentStore, SnapshotLayout, apply_blob, tar_tree};
use strata_solver::{ReadTree, Solver};

use crate::oci_layout::store_digest;
use crate::{Error, Image, Result, io_error, store_error};

/// Writes the filesystem of `image` into `dir` (created if missing).
pub fn write_local(content: &ContentStore, image: &Image, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_error(|| format!("creating {}", dir.display())))?;
    let layout = SnapshotLayout::Full { dir: dir.to_owned(), parent: None };
    for layer in &image.layers {
        let digest = store_digest(layer)?;
        apply_blob(content, &digest, &layout)
            .map_err(store_error(|| format!("writing layer {digest} to {}", dir.display())))?;
    }
    Ok(())
}

/// Streams the tree of `snapshot` (`None`: the empty tree of `scratch`) to `out` as one tar, mtimes clamped to
/// `source_date_epoch` if given, and returns `out`.
pub fn write_tar_fs<W: Write>(
    solver: &Solver,
    snapshot: Option<&str>,
    source_date_epoch: Option<i64>,
    out: W,
) -> Result<W> {
    let name = snapshot.unwrap_or("scratch");
    let tree = ReadTree::open(solver.snapshotter(), snapshot).map_err(|e| Error::Snapshot {
        context: format!("opening snapshot {name} to export it"),
        source: Box::new(e),
    })?;
    tar_tree(tree.path(), out, source_date_epoch).map_err(store_error(|| format!("writing the tar of {name}")))
}
