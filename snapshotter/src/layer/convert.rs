//! Re-encoding a stored layer in another compression, as BuildKit's `force-compression` does: the tar inside,
//! and so the diffID, stays the same; only the blob changes.

use std::io::{self, BufReader};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::layer::compress::{compress, decompress};
use crate::layer::diff::DiffOptions;
use crate::layer::{Hashed, LayerDescriptor};

/// Decompresses the layer blob `blob` of `store` (whatever its compression) and stores it again compressed as
/// `options` say, streaming; the source date epoch of `options` does not apply (the tar is kept as it is).
pub fn recompress(store: &ContentStore, blob: &Digest, options: &DiffOptions) -> Result<LayerDescriptor> {
    let what = || format!("recompressing layer {blob} as {}", options.compression);
    let input = BufReader::with_capacity(1 << 20, store.open_blob(blob)?);
    let mut tar = Hashed::new(decompress(input).context(what)?);
    let level = options.effective_level();
    let out = compress(options.compression, level, options.threads, store.writer()?, |out| {
        io::copy(&mut tar, out).map(drop).context(what)
    })?;
    let size = out.written();
    let digest = out.commit(None)?;
    Ok(LayerDescriptor { media_type: options.compression.media_type().to_owned(), digest, size, diff_id: tar.digest() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::compress::Compression;
    use crate::layer::diff::diff;
    use crate::snapshot::SnapshotLayout;

    #[test]
    fn recompressing_keeps_the_diff_id_and_changes_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/hello"), "hello ".repeat(1000)).unwrap();
        let store = ContentStore::open(dir.path().join("content")).unwrap();
        let layout = SnapshotLayout::Full { dir: tree, parent: None };
        let gzip = diff(&layout, &store, &DiffOptions::new()).unwrap();
        let zstd = recompress(&store, &gzip.digest, &DiffOptions::new().compression(Compression::Zstd)).unwrap();
        assert_eq!(zstd.diff_id, gzip.diff_id);
        assert_ne!(zstd.digest, gzip.digest);
        assert_eq!(zstd.media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
        let mut head = [0u8; 4];
        std::io::Read::read_exact(&mut store.open_blob(&zstd.digest).unwrap(), &mut head).unwrap();
        assert_eq!(Compression::detect(&head), Compression::Zstd);
        assert_eq!(store.size(&zstd.digest).unwrap(), zstd.size);
        let plain =
            recompress(&store, &zstd.digest, &DiffOptions::new().compression(Compression::Uncompressed)).unwrap();
        assert_eq!((plain.digest, plain.diff_id), (gzip.diff_id.clone(), gzip.diff_id), "a plain tar is its diffID");
    }
}
