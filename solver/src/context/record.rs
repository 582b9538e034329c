//! What one solve knows about a context directory's files, kept between solves in a record file: for each file
//! its stat and digest, so that a file whose stat is unchanged is not read again. The stat only decides whether
//! to read; cache keys come from the digests alone.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::hash::Digest;
use crate::error::{IoContext, Result};

/// First bytes of a record file; a new layout gets a new version, and old records are then just not trusted.
const MAGIC: &[u8] = b"strata context hashes v1\n";

/// How long after its last change a file stays racy: a change made right after it was hashed may fall in
/// the same timestamp tick and leave the stat as it was, so such a digest is not trusted later (git's rule).
const RACY_NANOS: i128 = 1_000_000_000;

/// The stat fields that move whenever a file's bytes may have changed. The ctime cannot be set by users and
/// moves on every write, chmod or rename, as git's index relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: i64,
    mtime_nsec: u32,
    ctime: i64,
    ctime_nsec: u32,
    ino: u64,
    dev: u64,
}

impl Stamp {
    /// The stamp of the file `meta` describes.
    fn of(meta: &Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec() as u32,
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// Whether the file changed within [`RACY_NANOS`] of `hashed_at` (or after it).
    fn racy(&self, hashed_at: SystemTime) -> bool {
        let nanos = |secs: i64, nsec: u32| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        let hashed_at = hashed_at.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or_default();
        nanos(self.mtime, self.mtime_nsec).max(nanos(self.ctime, self.ctime_nsec)) + RACY_NANOS > hashed_at
    }
}

/// A file's digest as of its stamp.
#[derive(Debug, Clone, Copy)]
struct Known {
    stamp: Stamp,
    digest: Digest,
    /// Hashed too soon after a change to be trusted by a later solve.
    racy: bool,
    /// Looked up or hashed in this solve; the record keeps only these, so deleted files drop out.
    seen: bool,
}

/// The digests known for one context's files in one solve, by relative path.
#[derive(Default)]
pub(crate) struct Files {
    known: HashMap<String, Known>,
    /// Something was hashed since the record was read or written.
    changed: bool,
}

impl Files {
    /// The digest of `rel` if its stat is what it was when it was hashed.
    pub(crate) fn digest(&mut self, rel: &str, meta: &Metadata) -> Option<Digest> {
        let known = self.known.get_mut(rel).filter(|k| k.stamp == Stamp::of(meta))?;
        known.seen = true;
        Some(known.digest)
    }

    /// Remembers the digest of `rel`, read at `hashed_at` from the file `meta` describes.
    pub(crate) fn insert(&mut self, rel: &str, meta: &Metadata, digest: Digest, hashed_at: SystemTime) {
        let stamp = Stamp::of(meta);
        self.known.insert(rel.to_owned(), Known { stamp, digest, racy: stamp.racy(hashed_at), seen: true });
        self.changed = true;
    }
}

/// The file digests of one context directory, loaded from and saved to its record file.
pub(crate) struct Memo {
    record: PathBuf,
    files: Mutex<Files>,
}

impl Memo {
    /// The memo the record file at `record` holds; a missing, truncated or corrupt record is ignored (every
    /// file is read again), never trusted.
    pub(crate) fn load(record: PathBuf) -> Self {
        let known = match fs::read(&record) {
            Ok(bytes) => decode(&bytes).unwrap_or_else(|| {
                tracing::warn!("ignoring the damaged context hash record {}", record.display());
                HashMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                tracing::warn!("ignoring the context hash record {}: {e}", record.display());
                HashMap::new()
            }
        };
        Self { record, files: Mutex::new(Files { known, changed: false }) }
    }

    /// The known digests, for looking up and adding.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Files> {
        // A panic elsewhere cannot leave the map half-updated: each change is one insert.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the record if something was hashed since it was read: the files seen in this solve whose digest
    /// a later solve may trust. Written to a temporary file and renamed, so readers see the old or new record.
    pub(crate) fn save(&self) -> Result<()> {
        let mut files = self.lock();
        if !files.changed {
            return Ok(());
        }
        let dir = self.record.parent().expect("records live in a directory");
        fs::create_dir_all(dir).io_context(|| format!("creating {}", dir.display()))?;
        let mut temp =
            tempfile::NamedTempFile::new_in(dir).io_context(|| format!("creating a file in {}", dir.display()))?;
        temp.write_all(&encode(&files.known)).io_context(|| format!("writing {}", temp.path().display()))?;
        temp.persist(&self.record).map_err(|e| e.error).io_context(|| format!("writing {}", self.record.display()))?;
        files.changed = false;
        Ok(())
    }

    /// Where the record is.
    #[cfg(test)]
    pub(crate) fn record(&self) -> &std::path::Path {
        &self.record
    }
}

/// The record's bytes: magic, entries (path, stamp, digest), then the blake3 of all that, so a torn or
/// damaged file is recognised.
fn encode(known: &HashMap<String, Known>) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    for (rel, known) in known.iter().filter(|(_, k)| k.seen && !k.racy) {
        let Stamp { size, mtime, mtime_nsec, ctime, ctime_nsec, ino, dev } = known.stamp;
        bytes.extend_from_slice(&(rel.len() as u32).to_le_bytes());
        bytes.extend_from_slice(rel.as_bytes());
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&mtime.to_le_bytes());
        bytes.extend_from_slice(&mtime_nsec.to_le_bytes());
        bytes.extend_from_slice(&ctime.to_le_bytes());
        bytes.extend_from_slice(&ctime_nsec.to_le_bytes());
        bytes.extend_from_slice(&ino.to_le_bytes());
        bytes.extend_from_slice(&dev.to_le_bytes());
        bytes.extend_from_slice(&known.digest);
    }
    let check = blake3::hash(&bytes);
    bytes.extend_from_slice(check.as_bytes());
    bytes
}

/// The entries of a record, or `None` if it is not one written by [`encode`].
fn decode(bytes: &[u8]) -> Option<HashMap<String, Known>> {
    let (body, check) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if blake3::hash(body).as_bytes() != check {
        return None;
    }
    let mut input = body.strip_prefix(MAGIC)?;
    let mut known = HashMap::new();
    while !input.is_empty() {
        let len = u32::from_le_bytes(take(&mut input)?) as usize;
        let (rel, rest) = input.split_at_checked(len)?;
        input = rest;
        let rel = std::str::from_utf8(rel).ok()?.to_owned();
        let stamp = Stamp {
            size: u64::from_le_bytes(take(&mut input)?),
            mtime: i64::from_le_bytes(take(&mut input)?),
            mtime_nsec: u32::from_le_bytes(take(&mut input)?),
            ctime: i64::from_le_bytes(take(&mut input)?),
            ctime_nsec: u32::from_le_bytes(take(&mut input)?),
            ino: u64::from_le_bytes(take(&mut input)?),
            dev: u64::from_le_bytes(take(&mut input)?),
        };
        let digest = take(&mut input)?;
        known.insert(rel, Known { stamp, digest, racy: false, seen: false });
    }
    Some(known)
}

/// The next `N` bytes of `input`.
fn take<const N: usize>(input: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = input.split_first_chunk::<N>()?;
    *input = rest;
    Some(*head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_without_racy_or_unseen_entries() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "x").unwrap();
        let meta = fs::metadata(dir.path().join("f")).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        let mut files = Files::default();
        files.insert("old", &meta, [1; 32], later);
        files.insert("racy", &meta, [2; 32], SystemTime::now());
        let mut known = decode(&encode(&files.known)).unwrap();
        assert_eq!(known.keys().collect::<Vec<_>>(), ["old"]);
        assert_eq!(known["old"].digest, [1; 32]);
        assert_eq!(known["old"].stamp, Stamp::of(&meta));
        known.get_mut("old").unwrap().seen = false;
        assert!(decode(&encode(&known)).unwrap().is_empty(), "entries not seen in a solve are dropped");
    }

    #[test]
    fn damaged_records_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), "x").unwrap();
        let meta = fs::metadata(dir.path().join("f")).unwrap();
        let mut files = Files::default();
        files.insert("f", &meta, [1; 32], SystemTime::now() + std::time::Duration::from_secs(5));
        let bytes = encode(&files.known);
        assert!(decode(&bytes).is_some());
        for cut in [0, 10, MAGIC.len(), bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[MAGIC.len() + 8] ^= 1;
        assert!(decode(&flipped).is_none());
    }
}
