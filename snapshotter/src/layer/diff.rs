//! Turns a snapshot's changes into an OCI layer in one streaming pass:
//! walk -> deterministic tar -> sha256 (diffID) -> compressor -> sha256 (digest) -> content store.
//!
//! Changes come from an overlay upper directory (whiteout devices and opaque xattrs become `.wh.` entries) or
//! from comparing a full tree with its parent's (added and changed entries, deletions as whiteouts).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::content::ContentStore;
use crate::error::{IoContext, Result, show};
use crate::fsmeta::Attrs;
use crate::layer::compress::{Compression, compress};
use crate::layer::tar::{EntryKind, TarWriter};
use crate::layer::{Hashed, LayerDescriptor, OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::snapshot::SnapshotLayout;
use crate::snapshot::copy::is_overlay_xattr;
use crate::snapshot::overlay::{is_opaque_xattr, is_whiteout};

/// Bytes gathered before the tar stream goes on to hashing and compression.
const WRITE_BUFFER: usize = 1 << 20;

/// How to make a layer: compression, level, threads and a timestamp clamp.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    pub(crate) compression: Compression,
    level: Option<u32>,
    pub(crate) threads: usize,
    source_date_epoch: Option<i64>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self { compression: Compression::Gzip, level: None, threads: 2, source_date_epoch: None }
    }
}

impl DiffOptions {
    /// gzip at the default level on two threads, mtimes as they are.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the compression.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the compression level (gzip 1-9, zstd 1-22); the compression's default otherwise.
    pub fn level(mut self, level: u32) -> Self {
        self.level = Some(level);
        self
    }

    /// Sets how many threads compress.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Clamps every mtime to at most `epoch` (seconds), as `SOURCE_DATE_EPOCH` asks, for reproducible digests.
    pub fn source_date_epoch(mut self, epoch: i64) -> Self {
        self.source_date_epoch = Some(epoch);
        self
    }

    /// The media type of the layers these options make.
    pub fn media_type(&self) -> &'static str {
        self.compression.media_type()
    }

    /// What decides the bytes of a layer made with these options (compression, effective level, time clamp),
    /// for caching made layers: options with equal keys make equal blobs from the same tree.
    pub fn cache_key(&self) -> String {
        let epoch = self.source_date_epoch.map_or_else(|| "none".to_owned(), |e| e.to_string());
        format!("{}-{}-epoch-{epoch}", self.compression, self.effective_level())
    }

    pub(crate) fn effective_level(&self) -> u32 {
        self.level.unwrap_or(self.compression.default_level())
    }
}

/// Writes the changes of the snapshot at `layout` as a layer blob into `store`.
pub fn diff(layout: &SnapshotLayout, store: &ContentStore, options: &DiffOptions) -> Result<LayerDescriptor> {
    let mut diff_id = None;
    let blob = compress(options.compression, options.effective_level(), options.threads, store.writer()?, |out| {
        let hashed = archive(layout, Hashed::new(out), options.source_date_epoch)?;
        diff_id = Some(hashed.digest());
        Ok(())
    })?;
    let size = blob.written();
    let digest = blob.commit(None)?;
    let diff_id = diff_id.expect("set by the body, which ran to completion");
    Ok(LayerDescriptor { media_type: options.compression.media_type().to_owned(), digest, size, diff_id })
}

/// Streams the whole tree at `dir` to `out` as one uncompressed tar, in the layers' deterministic format, with
/// mtimes clamped to `source_date_epoch` if given; returns `out`. What `type=tar` exports.
pub fn tar_tree<W: Write>(dir: &Path, out: W, source_date_epoch: Option<i64>) -> Result<W> {
    archive(&SnapshotLayout::Full { dir: dir.to_owned(), parent: None }, out, source_date_epoch)
}

/// The one tar walk behind layers and tree exports: the changes of `layout` (everything, for a tree without a
/// parent) as a tar stream into `out`.
fn archive<W: Write>(layout: &SnapshotLayout, out: W, epoch: Option<i64>) -> Result<W> {
    let (upper, lower, overlay) = match layout {
        SnapshotLayout::OverlayUpper(upper) => (upper.as_path(), None, true),
        SnapshotLayout::Full { dir, parent } => (dir.as_path(), parent.as_deref(), false),
    };
    let mut differ = Differ {
        // Big writes: file reads fill the buffer directly, and the compressor gets few large calls.
        tar: TarWriter::new(BufWriter::with_capacity(WRITE_BUFFER, out)),
        epoch,
        overlay,
        links: HashMap::new(),
        pending: Vec::new(),
    };
    differ.walk_dir(b"", upper, lower)?;
    differ
        .tar
        .finish()
        .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()))
        .and_then(|mut out| out.flush().map(|()| out))
        .context(|| format!("finishing the tar of {}", show(upper)))
}

struct Differ<W: Write> {
    tar: TarWriter<BufWriter<W>>,
    epoch: Option<i64>,
    overlay: bool,
    /// (device, inode) of multiply linked files already archived -> their tar name.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Unchanged directories on the current path; archived only if something below them changes, so that
    /// every changed entry's parents are in the layer with their attributes.
    pending: Vec<(Vec<u8>, Attrs)>,
}

impl<W: Write> Differ<W> {
    fn walk_dir(&mut self, prefix: &[u8], dir: &Path, lower: Option<&Path>) -> Result<()> {
        let names = sorted_names(dir)?;
        let lower_names = match lower {
            Some(lower) if !self.overlay => sorted_names(lower)?,
            _ => Vec::new(),
        };
        let (mut i, mut j) = (0, 0);
        while i < names.len() || j < lower_names.len() {
            let (name, in_upper, in_lower) = match (names.get(i), lower_names.get(j)) {
                (Some(a), Some(b)) if a == b => (a, true, true),
                (Some(a), Some(b)) if a < b => (a, true, false),
                (Some(a), None) => (a, true, false),
                (_, Some(b)) => (b, false, true),
                (None, None) => unreachable!("loop condition"),
            };
            i += usize::from(in_upper);
            j += usize::from(in_lower);
            let tar_name = [prefix, name.as_bytes()].concat();
            if in_upper {
                let lower_path = lower.filter(|_| in_lower).map(|l| l.join(name));
                self.entry(tar_name, &dir.join(name), lower_path.as_deref())?;
            } else {
                self.whiteout(prefix, name.as_bytes())?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, name: Vec<u8>, path: &Path, lower: Option<&Path>) -> Result<()> {
        let meta = fs::symlink_metadata(path).context(|| format!("reading {}", show(path)))?;
        if self.overlay && is_whiteout(&meta) {
            let (parent, base) = split_name(&name);
            return self.whiteout(parent, base);
        }
        if meta.file_type().is_socket() {
            // Sockets belong to the process that bound them; no layer format carries them.
            return Ok(());
        }
        let mut attrs = self.attrs(path, &meta)?;
        let lower_meta = lower.and_then(|l| fs::symlink_metadata(l).ok());
        if meta.is_dir() {
            let mut dir_name = name;
            dir_name.push(b'/');
            let changed = match (&lower_meta, lower) {
                (Some(lm), Some(lower)) if lm.is_dir() => self.attrs(lower, lm)? != attrs,
                _ => true,
            };
            self.pending.push((dir_name.clone(), attrs));
            if changed {
                self.flush_pending()?;
            }
            if self.overlay && is_opaque_xattr(path) {
                self.flush_pending()?;
                let opaque = [dir_name.as_slice(), OPAQUE_WHITEOUT.as_bytes()].concat();
                self.append_whiteout(&opaque)?;
            }
            let lower_dir = lower.filter(|_| lower_meta.as_ref().is_some_and(Metadata::is_dir));
            self.walk_dir(&dir_name, path, lower_dir)?;
            if self.pending.last().is_some_and(|(n, _)| *n == dir_name) {
                self.pending.pop();
            }
            return Ok(());
        }
        let changed = match (&lower_meta, lower) {
            (Some(lm), Some(lower)) => self.differs(path, &meta, &attrs, lower, lm)?,
            _ => true,
        };
        if !changed {
            return Ok(());
        }
        self.flush_pending()?;
        self.clamp(&mut attrs);
        let what = || format!("archiving {}", show(path));
        let file_type = meta.file_type();
        if meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                let first = first.clone();
                return self.tar.append(&name, EntryKind::Hardlink(&first), &attrs, None).context(what);
            }
            self.links.insert((meta.dev(), meta.ino()), name.clone());
        }
        if file_type.is_file() {
            let mut file = File::open(path).context(what)?;
            self.tar.append(&name, EntryKind::File { size: meta.len() }, &attrs, Some(&mut file)).context(what)
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).context(what)?;
            self.tar.append(&name, EntryKind::Symlink(target.as_os_str().as_bytes()), &attrs, None).context(what)
        } else {
            let (major, minor) = (rustix::fs::major(meta.rdev()), rustix::fs::minor(meta.rdev()));
            let kind = if file_type.is_char_device() {
                EntryKind::Char { major, minor }
            } else if file_type.is_block_device() {
                EntryKind::Block { major, minor }
            } else {
                EntryKind::Fifo
            };
            self.tar.append(&name, kind, &attrs, None).context(what)
        }
    }

    /// Whether a non-directory differs from its counterpart in the parent tree. Equal metadata with a
    /// whole-second mtime is not proof (tar-extracted files all look like that), so then content decides.
    fn differs(&self, path: &Path, meta: &Metadata, attrs: &Attrs, lower: &Path, lm: &Metadata) -> Result<bool> {
        let same_meta = meta.file_type() == lm.file_type()
            && meta.len() == lm.len()
            && meta.rdev() == lm.rdev()
            && *attrs == self.attrs(lower, lm)?;
        if !same_meta {
            return Ok(true);
        }
        if meta.file_type().is_symlink() {
            let a = fs::read_link(path).context(|| format!("reading link {}", show(path)))?;
            let b = fs::read_link(lower).context(|| format!("reading link {}", show(lower)))?;
            return Ok(a != b);
        }
        if meta.is_file() && meta.mtime_nsec() == 0 {
            return Ok(!same_content(path, lower)?);
        }
        Ok(false)
    }

    fn attrs(&self, path: &Path, meta: &Metadata) -> Result<Attrs> {
        let mut attrs = Attrs::read(path, meta).context(|| format!("reading attributes of {}", show(path)))?;
        if self.overlay {
            attrs.xattrs.retain(|(name, _)| !is_overlay_xattr(name));
        }
        Ok(attrs)
    }

    fn clamp(&self, attrs: &mut Attrs) {
        if let Some(epoch) = self.epoch {
            attrs.mtime = attrs.mtime.min(epoch);
        }
        // tar holds whole seconds; dropping the rest keeps the comparison with a parent honest too.
        attrs.mtime_nsec = 0;
    }

    fn whiteout(&mut self, parent: &[u8], base: &[u8]) -> Result<()> {
        self.flush_pending()?;
        let name = [parent, WHITEOUT_PREFIX.as_bytes(), base].concat();
        self.append_whiteout(&name)
    }

    fn append_whiteout(&mut self, name: &[u8]) -> Result<()> {
        // Whiteouts are markers, not files: all-zero attributes keep them identical across builds.
        let attrs = Attrs::default();
        self.tar
            .append(name, EntryKind::File { size: 0 }, &attrs, None)
            .context(|| format!("archiving whiteout {}", String::from_utf8_lossy(name)))
    }

    fn flush_pending(&mut self) -> Result<()> {
        for (name, mut attrs) in std::mem::take(&mut self.pending) {
            self.clamp(&mut attrs);
            self.tar
                .append(&name, EntryKind::Dir, &attrs, None)
                .context(|| format!("archiving directory {}", String::from_utf8_lossy(&name)))?;
        }
        Ok(())
    }
}

fn sorted_names(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)
        .and_then(|rd| rd.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<Vec<_>>>())
        .context(|| format!("listing {}", show(dir)))?;
    names.sort();
    Ok(names)
}

/// Splits a tar name into its parent prefix (with trailing `/`) and base name.
fn split_name(name: &[u8]) -> (&[u8], &[u8]) {
    match name.iter().rposition(|&b| b == b'/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => (&[], name),
    }
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    let open = |p: &Path| File::open(p).context(|| format!("opening {}", show(p)));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = fa.read(&mut ba).context(|| format!("reading {}", show(a)))?;
        let nb = fb.read_exact(&mut bb[..na]).map(|()| na).context(|| format!("reading {}", show(b)))?;
        if ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_tell_compressions_levels_and_epochs_apart() {
        let gzip = DiffOptions::new();
        assert_eq!(gzip.cache_key(), "gzip-6-epoch-none");
        assert_eq!(gzip.clone().level(6).cache_key(), gzip.cache_key(), "the default level is level 6");
        assert_ne!(gzip.clone().level(9).cache_key(), gzip.cache_key());
        assert_eq!(gzip.clone().compression(Compression::Zstd).cache_key(), "zstd-3-epoch-none");
        assert_eq!(gzip.clone().source_date_epoch(7).cache_key(), "gzip-6-epoch-7");
        assert_eq!(gzip.clone().threads(8).cache_key(), gzip.cache_key(), "threads do not change the bytes");
    }

    #[test]
    fn a_tree_tars_whole_with_clamped_times() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        std::os::unix::fs::symlink("etc/hosts", dir.path().join("hosts")).unwrap();
        let bytes = tar_tree(dir.path(), Vec::new(), Some(5)).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mtime().unwrap())
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["etc/", "etc/hosts", "hosts"]);
        assert!(entries.iter().all(|(_, mtime)| *mtime == 5), "{entries:?}");
    }
}
