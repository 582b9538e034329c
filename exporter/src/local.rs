//! `type=local`: the image's filesystem written to a directory, by applying its layers in order (so whiteouts
//! of later steps remove what earlier ones made, exactly as in a container).

use std::fs;
use std::path::Path;

use strata_snapshotter::{ContentStore, SnapshotLayout, apply_blob};

use crate::oci_layout::store_digest;
use crate::{Image, Result, io_error, store_error};

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
