//! Layer compression: multi-threaded gzip (gzp over zlib-rs) and zstd, or none; detection by magic bytes.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::str::FromStr;

use gzp::ZWriter;
use gzp::deflate::Gzip;
use gzp::par::compress::ParCompressBuilder;

use crate::error::{Error, IoContext, Result};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `application/vnd.oci.image.layer.v1.tar+gzip`, what every registry and runtime accepts.
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`: smaller and faster, needs a recent runtime.
    Zstd,
    /// `application/vnd.oci.image.layer.v1.tar`.
    Uncompressed,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Self::Uncompressed => "application/vnd.oci.image.layer.v1.tar",
        }
    }

    /// The level used when none is given: gzip's and zstd's own defaults (what pigz and `zstd` use).
    pub fn default_level(self) -> u32 {
        match self {
            Self::Gzip => 6,
            Self::Zstd => 3,
            Self::Uncompressed => 0,
        }
    }

    /// Recognises a compressed stream by its first bytes.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(GZIP_MAGIC) {
            Self::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Self::Zstd
        } else {
            Self::Uncompressed
        }
    }
}

impl FromStr for Compression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            "uncompressed" => Ok(Self::Uncompressed),
            other => Err(Error::InvalidArgument(format!(
                "unknown compression {other:?}: expected gzip, zstd or uncompressed"
            ))),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Uncompressed => "uncompressed",
        })
    }
}

/// Streams whatever `body` writes through the compressor into `out` and returns `out` when done. Both
/// compressors keep a bounded number of blocks in flight, so memory does not grow with the layer.
pub(crate) fn compress<W: Write + Send + 'static>(
    compression: Compression,
    level: u32,
    threads: usize,
    out: W,
    body: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<W> {
    let what = || format!("{compression} compressing at level {level} with {threads} threads");
    match compression {
        Compression::Gzip => {
            let mut gz = ParCompressBuilder::<Gzip>::new()
                .num_threads(threads.max(1))
                .map_err(io::Error::other)
                .context(what)?
                .compression_level(gzp::Compression::new(level.min(9)))
                .from_writer(out);
            body(&mut gz)?;
            gz.finish().map_err(io::Error::other).context(what)
        }
        Compression::Zstd => {
            let mut zst = zstd::Encoder::new(out, level as i32).context(what)?;
            // Always the multi-threaded mode: its output is the same for every worker count (zstd's guarantee),
            // where single-threaded mode's differs, so a layer's digest does not depend on the machine.
            zst.multithread(threads.max(1) as u32).context(what)?;
            body(&mut zst)?;
            zst.finish().context(what)
        }
        Compression::Uncompressed => {
            let mut out = out;
            body(&mut out)?;
            Ok(out)
        }
    }
}

/// Wraps `input` in the decompressor its first bytes call for.
pub(crate) fn decompress<'a, R: BufRead + 'a>(mut input: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = input.fill_buf()?;
    Ok(match Compression::detect(head) {
        // Multi-member: pigz and gzp may emit several gzip members, all part of one stream.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(input)?),
        Compression::Uncompressed => Box::new(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips_and_is_detected() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for c in [Compression::Gzip, Compression::Zstd, Compression::Uncompressed] {
            let out = compress(c, c.default_level(), 2, Vec::new(), |w| w.write_all(&data).context(|| "test".into()))
                .unwrap();
            assert_eq!(Compression::detect(&out), c);
            let mut back = Vec::new();
            decompress(&out[..]).unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{c}");
        }
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd);
    }

    #[test]
    fn the_thread_count_does_not_change_the_bytes() {
        // Several gzp blocks and several zstd jobs, compressible but not trivially.
        let data: Vec<u8> =
            (0..24_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 27) as u8 ^ (i / 7) as u8).collect();
        for c in [Compression::Gzip, Compression::Zstd] {
            let out = |threads| {
                compress(c, c.default_level(), threads, Vec::new(), |w| w.write_all(&data).context(|| "test".into()))
                    .unwrap()
            };
            let one = out(1);
            assert!(out(0) == one && out(2) == one && out(4) == one, "{c} output depends on the thread count");
        }
    }
}
