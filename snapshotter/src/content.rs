//! The content store: immutable blobs addressed by their sha256 digest, laid out like an OCI layout's
//! `blobs/sha256/<hex>`.
//!
//! A blob is written to a temp file under `ingest/`, hashed while it streams, fsynced, and renamed into place
//! only when its digest is known (and matches the expected one, if given), so a reader never sees a partial
//! blob and a killed writer leaves only a temp file. Every writer holds an exclusive lock on its temp file;
//! `open` removes the temp files nobody holds, which are the leftovers of killed processes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result, show};

/// A directory of blobs addressed by sha256, safe to share between processes.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root` and removes temp files left by killed writers.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = Self { root: root.into() };
        for dir in [store.blob_dir(), store.ingest_dir()] {
            fs::create_dir_all(&dir).context(|| format!("creating {}", show(&dir)))?;
        }
        store.remove_stale_ingests()?;
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    /// Whether the store holds this blob.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a blob in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        Ok(self.metadata(digest)?.len())
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| not_found_or(e, digest, || format!("opening blob {}", show(&path))))
    }

    /// Reads a whole (small) blob into memory: manifests, configs, indexes.
    pub fn read_bytes(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?.read_to_end(&mut bytes).context(|| format!("reading blob {digest}"))?;
        Ok(bytes)
    }

    /// Stores `bytes` and returns their digest.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let mut writer = self.writer()?;
        writer.write_all(bytes).context(|| "writing blob".to_owned())?;
        writer.commit(None)
    }

    /// Starts writing a new blob; nothing is visible until [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!("{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let path = self.ingest_dir().join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .context(|| format!("creating temp blob {}", show(&path)))?;
        // Held until the writer is dropped: `open` in another process must not take this file for stale.
        file.lock().context(|| format!("locking temp blob {}", show(&path)))?;
        Ok(BlobWriter { store: self.clone(), file: Some(file), path, hasher: Sha256::new(), written: 0 })
    }

    /// Re-hashes a stored blob and checks it against its name.
    pub fn verify(&self, digest: &Digest) -> Result<()> {
        let mut file = self.open_blob(digest)?;
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut HashWriter(&mut hasher)).context(|| format!("reading blob {digest}"))?;
        let actual = Digest::from_hasher(hasher);
        if &actual == digest {
            Ok(())
        } else {
            Err(Error::DigestMismatch { expected: digest.to_string(), actual: actual.to_string() })
        }
    }

    /// Removes a blob; removing an absent blob is not an error.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).context(|| format!("removing blob {}", show(&path)))
            }
            _ => Ok(()),
        }
    }

    /// Every blob in the store with its size, in digest order.
    pub fn walk(&self) -> Result<Vec<(Digest, u64)>> {
        let dir = self.blob_dir();
        let mut blobs = Vec::new();
        for entry in fs::read_dir(&dir).context(|| format!("listing {}", show(&dir)))? {
            let entry = entry.context(|| format!("listing {}", show(&dir)))?;
            let Some(digest) = entry.file_name().to_str().and_then(|n| Digest::from_hex(n).ok()) else {
                continue;
            };
            let len = entry.metadata().context(|| format!("reading metadata of blob {digest}"))?.len();
            blobs.push((digest, len));
        }
        blobs.sort();
        Ok(blobs)
    }

    fn metadata(&self, digest: &Digest) -> Result<fs::Metadata> {
        let path = self.blob_path(digest);
        fs::metadata(&path).map_err(|e| not_found_or(e, digest, || format!("reading metadata of {}", show(&path))))
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    fn remove_stale_ingests(&self) -> Result<()> {
        let dir = self.ingest_dir();
        for entry in fs::read_dir(&dir).context(|| format!("listing {}", show(&dir)))? {
            let path = entry.context(|| format!("listing {}", show(&dir)))?.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // A lock we can take belongs to no live writer.
            if file.try_lock().is_ok() {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }
}

fn not_found_or(e: io::Error, digest: &Digest, what: impl FnOnce() -> String) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::BlobNotFound(digest.to_string())
    } else {
        Error::Io { context: what(), source: e }
    }
}

/// A blob being written: hashes what passes through and becomes visible in the store only on `commit`.
#[derive(Debug)]
pub struct BlobWriter {
    store: ContentStore,
    file: Option<File>,
    path: PathBuf,
    hasher: Sha256,
    written: u64,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Finishes the blob: checks it against `expected` (if given), makes it durable and moves it into place.
    /// On a mismatch nothing enters the store.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest> {
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(expected) = expected.filter(|e| **e != actual) {
            return Err(Error::DigestMismatch { expected: expected.to_string(), actual: actual.to_string() });
        }
        let file = self.file.take().expect("file present until commit or drop");
        let target = self.store.blob_path(&actual);
        if target.exists() {
            // Content-addressed: an existing blob with this name already holds these bytes, durably; the copy is
            // dropped unsynced (a rebuild that writes the same config and manifest again pays no fsync).
            drop(file);
            let _ = fs::remove_file(&self.path);
        } else {
            file.sync_all().context(|| format!("syncing temp blob {}", show(&self.path)))?;
            drop(file);
            fs::rename(&self.path, &target).context(|| format!("moving {} to {}", show(&self.path), show(&target)))?;
            let dir = self.store.blob_dir();
            File::open(&dir).and_then(|d| d.sync_all()).context(|| format!("syncing {}", show(&dir)))?;
        }
        Ok(actual)
    }

    /// Like `commit`, but also checks the size announced alongside the digest (as in an OCI descriptor).
    pub fn commit_sized(self, expected: &Digest, size: u64) -> Result<Digest> {
        if self.written != size {
            return Err(Error::SizeMismatch { digest: expected.to_string(), expected: size, actual: self.written });
        }
        self.commit(Some(expected))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.as_mut().expect("file present until commit or drop").write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("file present until commit or drop").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // Not committed (an error or a cancel): the temp file is garbage.
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Adapts a hasher to `io::Write` so `io::copy` can stream into it.
pub(crate) struct HashWriter<'a>(pub(crate) &'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_verify_walk_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.write_bytes(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert!(store.exists(&d));
        assert_eq!(store.size(&d).unwrap(), 5);
        assert_eq!(store.read_bytes(&d).unwrap(), b"hello");
        store.verify(&d).unwrap();
        assert_eq!(store.walk().unwrap(), vec![(d.clone(), 5)]);
        store.delete(&d).unwrap();
        assert!(!store.exists(&d));
        assert!(matches!(store.read_bytes(&d), Err(Error::BlobNotFound(_))));
    }

    #[test]
    fn writing_an_existing_blob_again_keeps_one_copy_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let first = store.write_bytes(b"config").unwrap();
        assert_eq!(store.write_bytes(b"config").unwrap(), first);
        assert_eq!(store.walk().unwrap(), vec![(first.clone(), 6)]);
        assert_eq!(store.read_bytes(&first).unwrap(), b"config");
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn mismatched_content_never_enters_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"evil").unwrap();
        let err = w.commit(Some(&Digest::of(b"good"))).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(store.walk().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn size_is_checked_with_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"abc").unwrap();
        assert!(matches!(w.commit_sized(&Digest::of(b"abc"), 4), Err(Error::SizeMismatch { .. })));
    }

    #[test]
    fn open_removes_unlocked_temp_files_but_not_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let stale = dir.path().join("ingest/stale");
        fs::write(&stale, b"partial").unwrap();
        let mut live = store.writer().unwrap();
        live.write_all(b"in progress").unwrap();
        ContentStore::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 1);
        live.commit(None).unwrap();
    }
}
