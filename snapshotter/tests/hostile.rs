//! Hostile layers: every one is refused with an error naming the entry, or (for symlinks met on the way)
//! resolved inside the target as a container would see it; nothing is ever written outside the target.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use strata_snapshotter::{Error, SnapshotLayout, apply};
use tar::{EntryType, Header};

/// One raw tar entry, written without the checks a friendly tar writer would make.
struct Raw {
    name: Vec<u8>,
    kind: EntryType,
    link: Option<Vec<u8>>,
    data: &'static [u8],
    /// A PAX `path` record that overrides `name`.
    pax_path: Option<Vec<u8>>,
}

fn file(name: impl Into<Vec<u8>>, data: &'static [u8]) -> Raw {
    Raw { name: name.into(), kind: EntryType::Regular, link: None, data, pax_path: None }
}

fn link(kind: EntryType, name: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Raw {
    Raw { name: name.into(), kind, link: Some(target.into()), data: b"", pax_path: None }
}

fn archive(entries: &[Raw]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for raw in entries {
        if let Some(path) = &raw.pax_path {
            let record_len = path.len() + " path=\n".len();
            let len = record_len + (record_len + 6).to_string().len();
            let mut records = format!("{len} path=").into_bytes();
            records.extend_from_slice(path);
            records.push(b'\n');
            let mut header = Header::new_ustar();
            header.as_old_mut().name[..9].copy_from_slice(b"PaxHeader");
            header.set_entry_type(EntryType::XHeader);
            header.set_size(records.len() as u64);
            header.set_cksum();
            builder.append(&header, &records[..]).unwrap();
        }
        let mut header = Header::new_ustar();
        let n = raw.name.len().min(100);
        header.as_old_mut().name[..n].copy_from_slice(&raw.name[..n]);
        if let Some(link) = &raw.link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        }
        header.set_entry_type(raw.kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(raw.data.len() as u64);
        header.set_cksum();
        builder.append(&header, raw.data).unwrap();
    }
    builder.into_inner().unwrap()
}

struct Scene {
    _dir: tempfile::TempDir,
    target: PathBuf,
    sentinel: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let sentinel = dir.path().join("sentinel");
        fs::create_dir(&target).unwrap();
        fs::create_dir(&sentinel).unwrap();
        fs::write(sentinel.join("secret"), b"original").unwrap();
        Self { _dir: dir, target, sentinel }
    }

    fn apply(&self, entries: &[Raw]) -> Result<(), Error> {
        let layout = SnapshotLayout::Full { dir: self.target.clone(), parent: None };
        apply(&archive(entries)[..], None, &layout).map(drop)
    }

    /// The sentinel still holds exactly its one untouched, singly linked file.
    fn assert_sentinel_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.sentinel).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["secret"], "something was written into the sentinel");
        assert_eq!(fs::read(self.sentinel.join("secret")).unwrap(), b"original");
        assert_eq!(fs::metadata(self.sentinel.join("secret")).unwrap().nlink(), 1);
    }

    /// The sentinel's absolute path without the leading `/`, as a name inside the target.
    fn sentinel_inside(&self) -> Vec<u8> {
        self.sentinel.strip_prefix("/").unwrap().as_os_str().as_encoded_bytes().to_vec()
    }
}

fn assert_refused(result: Result<(), Error>, entry_part: &str, reason_part: &str) {
    let err = result.expect_err("the hostile layer was accepted");
    let msg = err.to_string();
    assert!(msg.contains(entry_part) && msg.contains(reason_part), "unclear error: {msg}");
}

#[test]
fn dot_dot_names_are_refused() {
    let s = Scene::new();
    assert_refused(s.apply(&[file("../sentinel/escaped", b"x")]), "../sentinel/escaped", "..");
    assert_refused(s.apply(&[file("a/../../sentinel/escaped", b"x")]), "a/../../sentinel/escaped", "..");
    s.assert_sentinel_untouched();
}

#[test]
fn absolute_names_are_refused() {
    let s = Scene::new();
    let name = s.sentinel.join("abs").into_os_string().into_encoded_bytes();
    assert_refused(s.apply(&[file(name, b"x")]), "/sentinel/abs", "absolute");
    s.assert_sentinel_untouched();
}

#[test]
fn a_symlink_to_root_is_resolved_inside_the_target() {
    let s = Scene::new();
    let through = [b"evil/".as_slice(), &s.sentinel_inside(), b"/through"].concat();
    s.apply(&[link(EntryType::Symlink, "evil", "/"), file(through, b"contained")]).unwrap();
    s.assert_sentinel_untouched();
    let landed = s.target.join(s.sentinel.strip_prefix("/").unwrap()).join("through");
    assert_eq!(fs::read(landed).unwrap(), b"contained");
}

#[test]
fn a_symlink_chain_climbing_out_is_resolved_inside_the_target() {
    let s = Scene::new();
    let through = [b"a/".as_slice(), &s.sentinel_inside(), b"/chained"].concat();
    let up = "../".repeat(20);
    s.apply(&[
        link(EntryType::Symlink, "a", "b"),
        link(EntryType::Symlink, "b", "c/d"),
        Raw { kind: EntryType::Directory, ..file("c/", b"") },
        link(EntryType::Symlink, "c/d", up.as_str()),
        file(through, b"contained"),
    ])
    .unwrap();
    s.assert_sentinel_untouched();
    assert!(s.target.join(s.sentinel.strip_prefix("/").unwrap()).join("chained").is_file());
}

#[test]
fn a_file_replacing_a_symlink_does_not_write_through_it() {
    let s = Scene::new();
    let victim = s.sentinel.join("secret").into_os_string().into_encoded_bytes();
    s.apply(&[link(EntryType::Symlink, "x", victim), file("x", b"pwned")]).unwrap();
    s.assert_sentinel_untouched();
    assert_eq!(fs::read(s.target.join("x")).unwrap(), b"pwned");
}

#[test]
fn hardlinks_to_host_paths_are_refused() {
    let s = Scene::new();
    let secret = s.sentinel.join("secret").into_os_string().into_encoded_bytes();
    assert_refused(s.apply(&[link(EntryType::Link, "hl", secret)]), "hl", "absolute");
    assert_refused(s.apply(&[link(EntryType::Link, "hl", "../sentinel/secret")]), "hl", "..");
    // Through a symlink to the sentinel: resolved inside the target, where there is no such file.
    let sentinel = s.sentinel.clone().into_os_string().into_encoded_bytes();
    let result = s.apply(&[link(EntryType::Symlink, "s", sentinel), link(EntryType::Link, "hl", "s/secret")]);
    assert_refused(result, "hl", "s/secret");
    s.assert_sentinel_untouched();
}

#[test]
fn huge_names_are_refused() {
    let s = Scene::new();
    let huge = Raw { pax_path: Some(b"d/".repeat(5000)), ..file("short", b"x") };
    assert_refused(s.apply(&[huge]), "d/d/", "4096");
    let long_component = file(vec![b'n'; 100], b"x");
    let long_component = Raw { pax_path: Some(vec![b'n'; 300]), ..long_component };
    assert_refused(s.apply(&[long_component]), "nnnn", "255");
    s.assert_sentinel_untouched();
}

#[test]
fn whiteouts_cannot_delete_outside() {
    let s = Scene::new();
    let sentinel = s.sentinel.clone().into_os_string().into_encoded_bytes();
    s.apply(&[link(EntryType::Symlink, "s", sentinel), file("s/.wh.secret", b"")]).unwrap();
    assert_refused(s.apply(&[file("../sentinel/.wh.secret", b"")]), "../sentinel/.wh.secret", "..");
    assert_refused(s.apply(&[file("../sentinel/.wh..wh..opq", b"")]), "../sentinel/.wh..wh..opq", "..");
    s.assert_sentinel_untouched();
    assert!(Path::new(&s.target).join("s").is_symlink());
}
