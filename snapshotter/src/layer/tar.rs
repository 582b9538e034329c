//! A deterministic tar writer for layers: ustar headers with empty user and group names, and a PAX record
//! set whenever ustar cannot hold a value (long names and link targets, big ids, sizes and times, xattrs).
//! The same tree always gives the same bytes.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

use crate::fsmeta::Attrs;

const BLOCK: usize = 512;
/// ustar's name and link name fields hold this many bytes.
const NAME_FIELD: usize = 100;
/// The largest value an 8-byte octal field (7 digits) holds.
const MAX_OCTAL_8: u64 = 0o7_777_777;
/// The largest value a 12-byte octal field (11 digits) holds.
const MAX_OCTAL_12: u64 = 0o77_777_777_777;

/// The kind of one tar entry, with what that kind needs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EntryKind<'a> {
    /// A regular file of this many bytes; its content follows the header.
    File { size: u64 },
    /// A directory.
    Dir,
    /// A symlink to this target.
    Symlink(&'a [u8]),
    /// A hardlink to this earlier entry name.
    Hardlink(&'a [u8]),
    /// A character device.
    Char { major: u32, minor: u32 },
    /// A block device.
    Block { major: u32, minor: u32 },
    /// A named pipe.
    Fifo,
}

/// Writes tar entries to `out`.
pub(crate) struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    /// Starts an archive.
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// Appends one entry; `content` must yield exactly `size` bytes for a file.
    pub fn append(
        &mut self,
        name: &[u8],
        kind: EntryKind<'_>,
        attrs: &Attrs,
        content: Option<&mut dyn Read>,
    ) -> io::Result<()> {
        let mut header = Header::new_ustar();
        let mut pax = PaxRecords::default();
        let (entry_type, size, link) = match kind {
            EntryKind::File { size } => (EntryType::Regular, size, None),
            EntryKind::Dir => (EntryType::Directory, 0, None),
            EntryKind::Symlink(target) => (EntryType::Symlink, 0, Some(target)),
            EntryKind::Hardlink(target) => (EntryType::Link, 0, Some(target)),
            EntryKind::Char { major, minor } | EntryKind::Block { major, minor } => {
                header.set_device_major(major)?;
                header.set_device_minor(minor)?;
                let t = if matches!(kind, EntryKind::Char { .. }) { EntryType::Char } else { EntryType::Block };
                (t, 0, None)
            }
            EntryKind::Fifo => (EntryType::Fifo, 0, None),
        };
        header.set_entry_type(entry_type);
        copy_field(&mut header.as_old_mut().name, name, "path", &mut pax);
        if let Some(link) = link {
            copy_field(&mut header.as_old_mut().linkname, link, "linkpath", &mut pax);
        }
        header.set_mode(attrs.mode);
        header.set_uid(pax.number("uid", attrs.uid.into(), MAX_OCTAL_8));
        header.set_gid(pax.number("gid", attrs.gid.into(), MAX_OCTAL_8));
        header.set_size(pax.number("size", size, MAX_OCTAL_12));
        let mtime = u64::try_from(attrs.mtime).unwrap_or(u64::MAX);
        if mtime > MAX_OCTAL_12 {
            pax.push("mtime", attrs.mtime.to_string().as_bytes());
        }
        header.set_mtime(mtime.min(MAX_OCTAL_12));
        for (key, value) in &attrs.xattrs {
            pax.push(&format!("SCHILY.xattr.{key}"), value);
        }
        if !pax.0.is_empty() {
            self.append_pax(name, &pax.0)?;
        }
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        if let Some(content) = content {
            let copied = io::copy(&mut content.take(size), &mut self.out)?;
            if copied != size {
                let msg = format!("{} shrank while archiving: {copied} of {size} bytes", String::from_utf8_lossy(name));
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
            }
        }
        self.pad(size)
    }

    /// Writes the end-of-archive marker and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        Ok(self.out)
    }

    fn append_pax(&mut self, name: &[u8], records: &[u8]) -> io::Result<()> {
        let mut header = Header::new_ustar();
        // A fixed prefix keeps archives reproducible (GNU tar puts its pid here).
        let base = name.rsplit(|&b| b == b'/').find(|c| !c.is_empty()).unwrap_or(b"");
        let mut pax_name = b"PaxHeaders.0/".to_vec();
        pax_name.extend_from_slice(&base[..base.len().min(NAME_FIELD - pax_name.len())]);
        header.as_old_mut().name[..pax_name.len()].copy_from_slice(&pax_name);
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_size(records.len() as u64);
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(records)?;
        self.pad(records.len() as u64)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0; BLOCK][rem..])?;
        }
        Ok(())
    }
}

/// Fills a fixed-size name field, moving the value to a PAX record when it does not fit.
fn copy_field(field: &mut [u8; NAME_FIELD], value: &[u8], pax_key: &str, pax: &mut PaxRecords) {
    if value.len() > NAME_FIELD {
        pax.push(pax_key, value);
    }
    let n = value.len().min(NAME_FIELD);
    field[..n].copy_from_slice(&value[..n]);
}

/// PAX extended header records, `"<len> <key>=<value>\n"` each.
#[derive(Default)]
struct PaxRecords(Vec<u8>);

impl PaxRecords {
    fn push(&mut self, key: &str, value: &[u8]) {
        // The length prefix counts itself, so find the number of digits that makes the total consistent.
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        self.0.extend_from_slice(format!("{len} {key}=").as_bytes());
        self.0.extend_from_slice(value);
        self.0.push(b'\n');
    }

    /// Returns `value` if it fits `max`, otherwise records it and returns 0 for the header field.
    fn number(&mut self, key: &str, value: u64, max: u64) -> u64 {
        if value > max {
            self.push(key, value.to_string().as_bytes());
            0
        } else {
            value
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Xattrs = Vec<(String, Vec<u8>)>;

    /// Each entry's path and PAX xattrs, as tar-rs reads them.
    fn read_back(bytes: &[u8]) -> Vec<(String, Xattrs)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let xattrs = e
                    .pax_extensions()
                    .unwrap()
                    .map(|p| p.map(|r| r.unwrap()).filter(|r| r.key().unwrap().starts_with("SCHILY.xattr.")))
                    .into_iter()
                    .flatten()
                    .map(|r| (r.key().unwrap().to_owned(), r.value_bytes().to_vec()))
                    .collect();
                (String::from_utf8(e.path_bytes().into_owned()).unwrap(), xattrs)
            })
            .collect()
    }

    #[test]
    fn long_names_big_ids_and_xattrs_go_to_pax() {
        let long = "d/".repeat(80) + "file";
        let attrs = Attrs {
            uid: 3_000_000,
            mode: 0o644,
            xattrs: vec![("user.k".into(), b"v\0x".to_vec())],
            ..Attrs::default()
        };
        let mut w = TarWriter::new(Vec::new());
        w.append(long.as_bytes(), EntryKind::File { size: 3 }, &attrs, Some(&mut &b"abc"[..])).unwrap();
        let bytes = w.finish().unwrap();
        let entries = read_back(&bytes);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, long);
        assert_eq!(entries[0].1, vec![("SCHILY.xattr.user.k".to_owned(), b"v\0x".to_vec())]);
        // tar-rs reads uid from the header only; the PAX record is what GNU tar and containerd use.
        assert!(String::from_utf8_lossy(&bytes).contains("uid=3000000"));
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut pax = PaxRecords::default();
        pax.push("path", &[b'a'; 93]);
        assert!(pax.0.starts_with(b"103 path="), "{}", String::from_utf8_lossy(&pax.0[..10]));
        assert_eq!(pax.0.len(), 103);
    }
}
