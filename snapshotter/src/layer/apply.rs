//! Unpacks an OCI layer into a snapshot, verifying its digest while it streams.
//!
//! A layer is untrusted input. Names with `..` or a leading `/` are refused, as are hardlinks to such names.
//! Every parent directory is resolved with `openat2(RESOLVE_IN_ROOT)`, so a symlink met on the way (`/`,
//! `../../..`, a chain of them) resolves inside the target as it would inside a container, never outside.
//! The final component is never followed: files are created with `O_EXCL|O_NOFOLLOW` after removing what
//! was there, and metadata calls use `AT_SYMLINK_NOFOLLOW`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, XattrFlags};
use rustix::io::Errno;

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result, show};
use crate::fsmeta::Attrs;
use crate::layer::compress::decompress;
use crate::layer::{Hashed, OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::snapshot::SnapshotLayout;

/// Linux's `PATH_MAX`: no entry name may be longer.
const MAX_NAME: usize = 4096;
/// Linux's `NAME_MAX`: no path component may be longer.
const MAX_COMPONENT: usize = 255;

/// What applying a layer learned about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The digest of the uncompressed tar, to check against the image config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// The size of the uncompressed tar.
    pub tar_size: u64,
}

/// Applies the blob `digest` from `store` to the snapshot at `layout`.
pub fn apply_blob(store: &ContentStore, digest: &Digest, layout: &SnapshotLayout) -> Result<Applied> {
    apply(store.open_blob(digest)?, Some(digest), layout)
}

/// Applies a layer (gzip, zstd or plain tar, detected from its first bytes) read from `blob` to the snapshot
/// at `layout`: an overlay upper gets overlay whiteouts, a full tree gets deletions. If `expected` is given,
/// the blob must hash to it. On any error the snapshot is half-written and must be discarded.
///
/// Like `tar -xz` (two processes), decompression and hashing run on their own thread, handing the tar
/// stream to the extracting thread in a few bounded chunks.
pub fn apply(blob: impl Read + Send, expected: Option<&Digest>, layout: &SnapshotLayout) -> Result<Applied> {
    let (dir, overlay) = match layout {
        SnapshotLayout::OverlayUpper(upper) => (upper.as_path(), true),
        SnapshotLayout::Full { dir, .. } => (dir.as_path(), false),
    };
    let reading = || format!("reading the layer for {}", show(dir));
    let mut extractor = Extractor::open(dir, overlay)?;
    let (decoded, extracted) = std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let decoder = s.spawn(move || decode(blob, tx));
        let mut tar_stream = ChannelReader { rx, chunk: Vec::new(), pos: 0 };
        let extracted = (|| {
            let mut archive = tar::Archive::new(&mut tar_stream);
            for entry in archive.entries().context(reading)? {
                extractor.entry(entry.context(reading)?)?;
            }
            // The zero blocks after the end marker are part of the diffID: let the decoder hash them.
            io::copy(&mut tar_stream, &mut io::sink()).context(reading)
        })();
        // Dropping the receiver stops a decoder still sending after an extraction error.
        drop(tar_stream);
        (decoder.join().expect("the layer decoder does not panic"), extracted)
    });
    // A broken stream is the cause of whatever extraction then saw, so its error comes first.
    let (raw, applied) = decoded.context(reading)?;
    extracted?;
    extractor.finish()?;
    match expected {
        Some(expected) if raw != *expected => {
            Err(Error::DigestMismatch { expected: expected.to_string(), actual: raw.to_string() })
        }
        _ => Ok(applied),
    }
}

/// Chunk size and count between the decoder and the extractor: memory stays at a few MiB.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

/// Reads, hashes and decompresses `blob`, sending the tar stream in chunks; returns the blob digest and
/// what the tar stream hashed to. Stops quietly when the extractor hangs up.
fn decode(blob: impl Read, tx: mpsc::SyncSender<Vec<u8>>) -> io::Result<(Digest, Applied)> {
    let mut raw = Hashed::new(blob);
    let mut tar_stream = Hashed::new(decompress(BufReader::with_capacity(CHUNK, &mut raw))?);
    loop {
        let mut chunk = vec![0; CHUNK];
        let n = tar_stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        chunk.truncate(n);
        if tx.send(chunk).is_err() {
            break;
        }
    }
    let applied = Applied { diff_id: tar_stream.digest(), tar_size: tar_stream.bytes };
    drop(tar_stream);
    // Whatever follows the compressed stream still counts toward the blob digest.
    io::copy(&mut raw, &mut io::sink())?;
    Ok((raw.digest(), applied))
}

/// The extracting side of the decoder's channel.
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => (self.chunk, self.pos) = (chunk, 0),
                // The decoder is done (or failed, which it reports itself).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct Extractor {
    root: OwnedFd,
    overlay: bool,
    privileged: bool,
    /// Paths this layer created: its own whiteouts and opaque markers must not delete them.
    written: HashSet<Vec<u8>>,
    /// Directory attributes, set last (deepest first) because creating children changes mtimes.
    dirs: Vec<(Vec<u8>, Attrs)>,
    /// The most recently opened parent directory, reused by its following siblings.
    cached_parent: Option<(Vec<u8>, OwnedFd)>,
    /// File content passes through this one buffer.
    buf: Vec<u8>,
}

impl Extractor {
    fn open(dir: &Path, overlay: bool) -> Result<Self> {
        let root = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(io::Error::from)
            .context(|| format!("opening {}", show(dir)))?;
        Ok(Self {
            root,
            overlay,
            privileged: rustix::process::geteuid().is_root(),
            written: HashSet::new(),
            dirs: Vec::new(),
            cached_parent: None,
            buf: vec![0; CHUNK],
        })
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let bad = |reason: String| Error::BadEntry { entry: shown.clone(), reason };
        let path = clean_name(&raw).map_err(bad)?;
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            return Ok(());
        }
        let (parent, base) = split(&path);
        if base == OPAQUE_WHITEOUT.as_bytes() {
            return self.opaque(parent, &shown);
        }
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parent, hidden, &shown);
        }
        let attrs = self.attrs(&mut entry).context(|| format!("reading the header of layer entry {shown:?}"))?;
        if path.is_empty() {
            // `./`: the root itself; only its attributes can change.
            self.dirs.push((path, attrs));
            return Ok(());
        }
        let fail = |context: &str| {
            let (entry, context) = (shown.clone(), context.to_owned());
            move |source: io::Error| Error::Apply { entry, context, source }
        };
        let dir = self.open_dir(parent, true, &shown)?.expect("created when missing");
        let name = as_path(base);
        use tar::EntryType as T;
        match entry_type {
            T::Directory => {
                let mkdir = || rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700));
                // An existing directory is kept (layers below may fill it); anything else is replaced.
                match mkdir() {
                    Err(Errno::EXIST) => {
                        if !self.clear(&dir, name, true, &shown)? {
                            mkdir().map_err(|e| fail("creating the directory")(e.into()))?;
                        }
                    }
                    other => other.map_err(|e| fail("creating the directory")(e.into()))?,
                }
                self.dirs.push((path.clone(), attrs));
            }
            T::Regular | T::Continuous => {
                let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = self
                    .create_replacing(&dir, name, &shown, || {
                        rustix::fs::openat(&dir, name, flags, Mode::from_raw_mode(0o600))
                    })?
                    .map_err(|e| fail("creating the file")(e.into()))?;
                let mut file = File::from(fd);
                loop {
                    let n = entry.read(&mut self.buf).map_err(fail("reading the file from the layer"))?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n]).map_err(fail("writing the file"))?;
                }
                self.write_attrs(&dir, name, &attrs, false, &shown)?;
            }
            T::Symlink => {
                let target =
                    entry.link_name_bytes().ok_or_else(|| bad("symlink without a target".into()))?.into_owned();
                self.create_replacing(&dir, name, &shown, || rustix::fs::symlinkat(as_path(&target), &dir, name))?
                    .map_err(|e| fail("creating the symlink")(e.into()))?;
                self.write_attrs(&dir, name, &attrs, true, &shown)?;
            }
            T::Link => {
                let target =
                    entry.link_name_bytes().ok_or_else(|| bad("hardlink without a target".into()))?.into_owned();
                let target = clean_name(&target).map_err(|reason| bad(format!("hardlink target: {reason}")))?;
                let (target_parent, target_base) = split(&target);
                let target_dir = self.open_dir(target_parent, false, &shown)?.ok_or_else(|| {
                    bad(format!("hardlink target {} is not in the layer", String::from_utf8_lossy(&target)))
                })?;
                // No AT_SYMLINK_FOLLOW: a symlink target gets linked itself, never what it points to.
                let link = || rustix::fs::linkat(&target_dir, as_path(target_base), &dir, name, AtFlags::empty());
                self.create_replacing(&dir, name, &shown, link)?
                    .map_err(|e| fail(&format!("linking to {}", String::from_utf8_lossy(&target)))(e.into()))?;
            }
            T::Char | T::Block | T::Fifo => {
                if !self.privileged && entry_type != T::Fifo {
                    tracing::warn!("skipping device node {shown:?}: creating devices needs root");
                    return Ok(());
                }
                let header = entry.header();
                let (major, minor) = (header.device_major().ok().flatten(), header.device_minor().ok().flatten());
                let dev = rustix::fs::makedev(major.unwrap_or(0), minor.unwrap_or(0));
                let file_type = match entry_type {
                    T::Char => FileType::CharacterDevice,
                    T::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let mknod = || rustix::fs::mknodat(&dir, name, file_type, Mode::from_raw_mode(0o600), dev);
                self.create_replacing(&dir, name, &shown, mknod)?.map_err(|e| fail("creating the node")(e.into()))?;
                self.write_attrs(&dir, name, &attrs, false, &shown)?;
            }
            other => return Err(bad(format!("unsupported entry type {other:?}"))),
        }
        self.written.insert(path);
        Ok(())
    }

    /// `.wh.NAME`: hides NAME of the layers below (unless this layer made it).
    fn whiteout(&mut self, parent: &[u8], hidden: &[u8], shown: &str) -> Result<()> {
        let target = join(parent, hidden);
        if hidden.is_empty() || self.written.contains(&target) {
            return Ok(());
        }
        let name = as_path(hidden);
        if self.overlay {
            let dir = self.open_dir(parent, true, shown)?.expect("created when missing");
            self.clear(&dir, name, false, shown)?;
            rustix::fs::mknodat(&dir, name, FileType::CharacterDevice, Mode::empty(), 0).map_err(|e| Error::Apply {
                entry: shown.into(),
                context: "creating an overlay whiteout".into(),
                source: e.into(),
            })?;
        } else if let Some(dir) = self.open_dir(parent, false, shown)? {
            self.clear(&dir, name, false, shown)?;
        }
        Ok(())
    }

    /// `.wh..wh..opq`: hides everything the layers below have in the directory.
    fn opaque(&mut self, parent: &[u8], shown: &str) -> Result<()> {
        let dir = self.open_dir(parent, true, shown)?.expect("created when missing");
        let fail =
            |context: &str, source: io::Error| Error::Apply { entry: shown.into(), context: context.into(), source };
        if self.overlay {
            return rustix::fs::fsetxattr(&dir, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                .map_err(|e| fail("marking the directory opaque", e.into()));
        }
        for name in list_dir(&dir).map_err(|e| fail("listing the directory", e))? {
            if !self.written.contains(&join(parent, &name)) {
                self.clear(&dir, as_path(&name), false, shown)?;
            }
        }
        Ok(())
    }

    /// Runs `create` for `name` in `dir`; if the name is taken, removes what has it and runs it once more.
    /// Most names are new, so this saves a stat per entry over clearing first.
    fn create_replacing<T>(
        &mut self,
        dir: &OwnedFd,
        name: &Path,
        shown: &str,
        create: impl Fn() -> rustix::io::Result<T>,
    ) -> Result<rustix::io::Result<T>> {
        match create() {
            Err(Errno::EXIST) => {
                self.clear(dir, name, false, shown)?;
                Ok(create())
            }
            other => Ok(other),
        }
    }

    /// Removes whatever `name` in `dir` is, unless `keep_dir` and it is a directory; returns whether a
    /// directory was kept.
    fn clear(&mut self, dir: &OwnedFd, name: &Path, keep_dir: bool, shown: &str) -> Result<bool> {
        let fail =
            |source: io::Error| Error::Apply { entry: shown.into(), context: "removing what was there".into(), source };
        let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Ok(false),
            other => other.map_err(|e| fail(e.into()))?,
        };
        let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(true);
        }
        // Whatever is removed may be a cached parent (or lead to one).
        self.cached_parent = None;
        if is_dir {
            remove_tree_at(dir, name)
        } else {
            rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(io::Error::from)
        }
        .map_err(fail)?;
        Ok(false)
    }

    /// Opens the directory `path` inside the root, resolving symlinks as if the root were `/`. Missing
    /// directories are created when `create` (0755, as tar does); otherwise a missing one gives `None`.
    fn open_dir(&mut self, path: &[u8], create: bool, shown: &str) -> Result<Option<OwnedFd>> {
        if let Some((cached, fd)) = &self.cached_parent
            && cached == path
        {
            let fd = fd.try_clone().context(|| format!("layer entry {shown:?}: duplicating a descriptor"))?;
            return Ok(Some(fd));
        }
        let fail = |source: io::Error| Error::Apply {
            entry: shown.into(),
            context: format!("opening parent directory {:?}", String::from_utf8_lossy(path)),
            source,
        };
        let fd = match resolve(&self.root, path) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => self.create_dirs(path).map_err(fail)?,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(fail(e.into())),
        };
        self.cached_parent = Some((path.to_vec(), fd.try_clone().map_err(fail)?));
        Ok(Some(fd))
    }

    /// `mkdir -p` inside the root: each component is made in its parent as resolved inside the root.
    fn create_dirs(&self, path: &[u8]) -> io::Result<OwnedFd> {
        let mut dir = resolve(&self.root, b"")?;
        let mut prefix = Vec::new();
        for component in path.split(|&b| b == b'/') {
            prefix = join(&prefix, component);
            dir = match resolve(&self.root, &prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&dir, as_path(component), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    resolve(&self.root, &prefix)?
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(dir)
    }

    fn attrs<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> io::Result<Attrs> {
        let header = entry.header();
        let mut attrs = Attrs {
            uid: header.uid()? as u32,
            gid: header.gid()? as u32,
            mode: header.mode()? & 0o7777,
            mtime: header.mtime()? as i64,
            mtime_nsec: 0,
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions()? {
            for record in pax {
                let record = record?;
                let (Ok(key), Ok(value)) = (record.key(), record.value()) else {
                    continue;
                };
                match key {
                    "uid" => attrs.uid = value.parse().map_err(io::Error::other)?,
                    "gid" => attrs.gid = value.parse().map_err(io::Error::other)?,
                    "mtime" => {
                        let (secs, frac) = value.split_once('.').unwrap_or((value, "0"));
                        attrs.mtime = secs.parse().map_err(io::Error::other)?;
                        let digits = format!("{frac:0<9}");
                        attrs.mtime_nsec = digits[..9].parse().map_err(io::Error::other)?;
                    }
                    _ => {}
                }
            }
            for record in entry.pax_extensions()?.into_iter().flatten() {
                let record = record?;
                if let Some(name) = record.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    attrs.xattrs.push((name.to_owned(), record.value_bytes().to_vec()));
                }
            }
        }
        if !self.privileged {
            // Without root, files belong to us and privileged xattr namespaces are out of reach.
            attrs.uid = rustix::process::geteuid().as_raw();
            attrs.gid = rustix::process::getegid().as_raw();
            attrs.xattrs.retain(|(name, _)| name.starts_with("user."));
        }
        Ok(attrs)
    }

    fn write_attrs(&self, dir: &OwnedFd, name: &Path, attrs: &Attrs, is_symlink: bool, shown: &str) -> Result<()> {
        attrs.write(dir.as_fd(), name, is_symlink).map_err(|source| Error::Apply {
            entry: shown.into(),
            context: "setting owner, mode, xattrs and mtime".into(),
            source,
        })
    }

    /// Sets the deferred directory attributes, deepest first so a parent's mtime is set after its children.
    fn finish(mut self) -> Result<()> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, attrs) in dirs {
            let shown = String::from_utf8_lossy(&path).into_owned();
            let (parent, base) = split(&path);
            let name = if path.is_empty() { Path::new(".") } else { as_path(base) };
            let Some(dir) = self.open_dir(parent, false, &shown)? else {
                continue;
            };
            // A later entry may have replaced the directory with something else.
            let still_dir = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
            if still_dir {
                self.write_attrs(&dir, name, &attrs, false, &shown)?;
            }
        }
        Ok(())
    }
}

/// Checks and normalises an entry name: relative, no `..`, within Linux's limits; `.` and empty
/// components are dropped. The root itself is the empty name.
fn clean_name(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.len() > MAX_NAME {
        return Err(format!("name is {} bytes long; the limit is {MAX_NAME}", raw.len()));
    }
    if raw.starts_with(b"/") {
        return Err("absolute name refused: layer entries must be relative to the root".into());
    }
    let mut clean = Vec::with_capacity(raw.len());
    for component in raw.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
        if component == b".." {
            return Err("name contains a `..` component, which could reach outside the root".into());
        }
        if component.len() > MAX_COMPONENT {
            return Err(format!("a component is {} bytes long; the limit is {MAX_COMPONENT}", component.len()));
        }
        if !clean.is_empty() {
            clean.push(b'/');
        }
        clean.extend_from_slice(component);
    }
    Ok(clean)
}

/// Opens `path` as a directory inside `root`: symlinks (absolute ones, `..`, magic /proc links) cannot
/// lead out of it.
fn resolve(root: &OwnedFd, path: &[u8]) -> rustix::io::Result<OwnedFd> {
    let path = if path.is_empty() { Path::new(".") } else { as_path(path) };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::openat2(root, path, flags, Mode::empty(), ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS)
}

/// Removes the directory `name` in `dir` and everything in it, never following symlinks.
fn remove_tree_at(dir: &OwnedFd, name: &Path) -> io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let sub = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    for child in list_dir(&sub)? {
        let child = as_path(&child);
        let stat = rustix::fs::statat(&sub, child, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            remove_tree_at(&sub, child)?;
        } else {
            rustix::fs::unlinkat(&sub, child, AtFlags::empty())?;
        }
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

/// The names in a directory, without `.` and `..`.
fn list_dir(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() { name.to_vec() } else { [parent, b"/", name].concat() }
}

fn as_path(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_or_refused() {
        assert_eq!(clean_name(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(clean_name(b"./").unwrap(), b"");
        assert!(clean_name(b"a/../../etc").unwrap_err().contains(".."));
        assert!(clean_name(b"/etc/passwd").unwrap_err().contains("absolute"));
        assert!(clean_name(&vec![b'a'; 300]).unwrap_err().contains("255"));
        assert!(clean_name(&b"a/".repeat(3000)).unwrap_err().contains("4096"));
    }
}
