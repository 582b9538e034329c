//! OCI layers: [`diff`](diff::diff) writes a snapshot's changes as a compressed tar blob,
//! [`apply`](apply::apply) unpacks one into a snapshot safely, [`recompress`](convert::recompress) re-encodes one.

pub mod apply;
pub mod compress;
pub mod convert;
pub mod diff;
mod tar;

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// Marks a deleted entry: `.wh.NAME` deletes `NAME` from the layers below.
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
/// Marks an opaque directory: nothing below it in lower layers shows through.
pub(crate) const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// What an image manifest says about one layer, plus the diffID its config lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerDescriptor {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`, `+zstd` or plain `tar`.
    pub media_type: String,
    /// The digest of the blob as stored (compressed).
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// A reader or writer that hashes every byte passing through it.
pub(crate) struct Hashed<T> {
    inner: T,
    hasher: Sha256,
    /// How many bytes have passed.
    pub bytes: u64,
}

impl<T> Hashed<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// The digest of what has passed so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}
