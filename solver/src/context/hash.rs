//! Tree checksums for cache keys. The walk lists the entries first (cheap), the file bytes are then hashed in
//! parallel, and the per-entry records are folded in walk order, so the result never depends on how the threads
//! were scheduled.

use std::fs::{self, Metadata};
use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;

use super::record::Memo;
use super::{ContextFilter, walk};
use crate::error::{IoContext, Result};

/// Read size for hashing: large enough for blake3 to work on many chunks at once.
const READ_BUFFER: usize = 64 * 1024;

/// A file's content digest.
pub(crate) type Digest = [u8; 32];

/// One thing a checksum covers.
enum Item {
    /// Bytes standing for themselves, such as a COPY source as written.
    Label(Vec<u8>),
    /// A file system entry under its relative path.
    Entry { rel: String, path: PathBuf, meta: Metadata },
}

/// What a checksum covers, in order.
#[derive(Default)]
pub(crate) struct Selection {
    items: Vec<Item>,
}

/// A tree checksum and what computing it had to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checksum {
    /// The checksum itself.
    pub(crate) digest: Digest,
    /// How many files were read (the others' digests were remembered).
    pub(crate) files_read: usize,
    /// How many bytes those files held.
    pub(crate) bytes_read: u64,
}

/// One item's share of the checksum.
struct Part {
    bytes: Vec<u8>,
    /// The file's digest and size when its bytes were read for this checksum.
    read: Option<(Digest, u64)>,
}

impl Selection {
    /// Adds bytes that stand for themselves.
    pub(crate) fn label(&mut self, label: &[u8]) {
        self.items.push(Item::Label(label.to_vec()));
    }

    /// Adds one entry under its relative path.
    pub(crate) fn entry(&mut self, rel: &str, path: &Path, meta: &Metadata) {
        self.items.push(Item::Entry { rel: rel.to_owned(), path: path.to_owned(), meta: meta.clone() });
    }

    /// Adds every entry the filter selects below `dir`, relative to the context root `root`.
    pub(crate) fn walk(&mut self, root: &Path, dir: &Path, filter: &ContextFilter) -> Result<()> {
        walk(root, dir, filter, &mut |rel, path, meta| {
            self.entry(rel, path, meta);
            Ok(())
        })
    }

    /// Hashes everything selected on the current rayon pool; files whose digest `memo` remembers for their
    /// unchanged stat are not read, and the digests of files read are handed back to it.
    pub(crate) fn checksum(self, memo: Option<&Memo>) -> Result<Checksum> {
        // Taken before any file is read, so a file changed while it is read counts as racy.
        let hashed_at = SystemTime::now();
        let remembered: Vec<Option<Digest>> = match memo {
            Some(memo) => {
                let mut files = memo.lock();
                self.items
                    .iter()
                    .map(|item| match item {
                        Item::Entry { rel, meta, .. } if meta.is_file() => files.digest(rel, meta),
                        _ => None,
                    })
                    .collect()
            }
            None => vec![None; self.items.len()],
        };
        let parts: Vec<Part> =
            self.items.par_iter().zip(remembered).map(|(item, digest)| part(item, digest)).collect::<Result<_>>()?;
        let mut checksum = Checksum { digest: [0; 32], files_read: 0, bytes_read: 0 };
        let mut hasher = blake3::Hasher::new();
        let mut files = memo.map(Memo::lock);
        for (item, part) in self.items.iter().zip(&parts) {
            hasher.update(&part.bytes);
            if let (Some((digest, size)), Item::Entry { rel, meta, .. }) = (part.read, item) {
                checksum.files_read += 1;
                checksum.bytes_read += size;
                if let Some(files) = files.as_mut() {
                    files.insert(rel, meta, digest, hashed_at);
                }
            }
        }
        checksum.digest = *hasher.finalize().as_bytes();
        Ok(checksum)
    }
}

/// The bytes an item adds to the checksum: an entry's path, mode (with its type), owner, xattrs sorted by name,
/// and link target or file size and digest; never its times. Every field is framed, so no two different
/// trees give the same byte stream.
fn part(item: &Item, remembered: Option<Digest>) -> Result<Part> {
    let mut bytes = Vec::with_capacity(128);
    let (rel, path, meta) = match item {
        Item::Label(label) => {
            bytes.push(0);
            framed(&mut bytes, label);
            return Ok(Part { bytes, read: None });
        }
        Item::Entry { rel, path, meta } => (rel, path, meta),
    };
    bytes.push(1);
    framed(&mut bytes, rel.as_bytes());
    bytes.extend_from_slice(&meta.mode().to_le_bytes());
    bytes.extend_from_slice(&meta.uid().to_le_bytes());
    bytes.extend_from_slice(&meta.gid().to_le_bytes());
    let xattrs = strata_snapshotter::read_xattrs(path)
        .io_context(|| format!("reading the extended attributes of {}", path.display()))?;
    bytes.extend_from_slice(&(xattrs.len() as u64).to_le_bytes());
    for (name, value) in &xattrs {
        framed(&mut bytes, name.as_bytes());
        framed(&mut bytes, value);
    }
    let mut read = None;
    if meta.is_symlink() {
        let target = fs::read_link(path).io_context(|| format!("reading the link {}", path.display()))?;
        framed(&mut bytes, target.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        let digest = match remembered {
            Some(digest) => digest,
            None => {
                let (digest, size) = file_digest(path)?;
                read = Some((digest, size));
                digest
            }
        };
        bytes.extend_from_slice(&meta.len().to_le_bytes());
        bytes.extend_from_slice(&digest);
    }
    Ok(Part { bytes, read })
}

/// Appends `field` with its length in front.
fn framed(bytes: &mut Vec<u8>, field: &[u8]) {
    bytes.extend_from_slice(&(field.len() as u64).to_le_bytes());
    bytes.extend_from_slice(field);
}

/// The blake3 digest of a file's bytes and how many there were.
fn file_digest(path: &Path) -> Result<(Digest, u64)> {
    let file = fs::File::open(path).io_context(|| format!("opening {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let size = std::io::copy(&mut BufReader::with_capacity(READ_BUFFER, file), &mut hasher)
        .io_context(|| format!("hashing {}", path.display()))?;
    Ok((*hasher.finalize().as_bytes(), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of files of many sizes, directories and symlinks.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..8 {
            let sub = dir.path().join(format!("d{d}"));
            fs::create_dir(&sub).unwrap();
            for f in 0..40 {
                let len = (d * 40 + f) * 997 % 300_000;
                fs::write(sub.join(format!("f{f}")), vec![(d * f) as u8; len]).unwrap();
            }
            std::os::unix::fs::symlink(format!("f{d}"), sub.join("link")).unwrap();
        }
        dir
    }

    fn checksum_on(threads: usize, dir: &Path) -> Checksum {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut selection = Selection::default();
            selection.walk(dir, dir, &ContextFilter::new(&[], &[]).unwrap()).unwrap();
            selection.checksum(None).unwrap()
        })
    }

    #[test]
    fn the_checksum_does_not_depend_on_the_number_of_threads() {
        let dir = tree();
        let one = checksum_on(1, dir.path());
        assert_eq!(one.files_read, 8 * 40);
        for threads in [2, 3, 8] {
            assert_eq!(checksum_on(threads, dir.path()), one, "{threads} threads");
        }
        fs::write(dir.path().join("d3/f7"), "changed").unwrap();
        assert_ne!(checksum_on(4, dir.path()).digest, one.digest);
    }

    #[test]
    fn labels_and_entries_are_framed_apart() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ab"), "").unwrap();
        let meta = fs::symlink_metadata(dir.path().join("ab")).unwrap();
        let sum = |labels: &[&str], rel: &str| {
            let mut selection = Selection::default();
            labels.iter().for_each(|l| selection.label(l.as_bytes()));
            selection.entry(rel, &dir.path().join("ab"), &meta);
            selection.checksum(None).unwrap().digest
        };
        assert_ne!(sum(&["a", "b"], "ab"), sum(&["ab"], "ab"));
        assert_ne!(sum(&["a"], "ab"), sum(&["ab"], "a"));
    }

    #[test]
    fn an_xattr_change_changes_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let before = checksum_on(2, dir.path());
        if let Err(e) = set_xattr(&file, "user.strata", b"1") {
            eprintln!(
                "SKIPPED an_xattr_change_changes_the_checksum: {} refuses user xattrs: {e}",
                dir.path().display()
            );
            return;
        }
        let with = checksum_on(2, dir.path());
        assert_ne!(with.digest, before.digest);
        set_xattr(&file, "user.strata", b"2").unwrap();
        assert_ne!(checksum_on(2, dir.path()).digest, with.digest, "the value counts too");
    }

    fn set_xattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
        let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let name = std::ffi::CString::new(name).unwrap();
        // SAFETY: both strings are NUL-terminated and `value` outlives the call.
        let rc = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    }
}
