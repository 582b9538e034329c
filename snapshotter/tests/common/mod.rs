//! Helpers shared by the integration tests: tree snapshots for comparison and OCI layout reading.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use strata_snapshotter::{ContentStore, Digest};

/// Everything about one entry that a layer must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// The digest of a file's content, a symlink's target.
    pub content: String,
    pub rdev: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// For multiply linked files: the first path (in sorted order) sharing the inode.
    pub link_group: Option<PathBuf>,
}

/// Which mtimes a comparison looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtimes {
    /// Files, symlinks and nodes, not directories (creating children touches those).
    NotDirs,
    /// None: the trees were made at different times.
    Ignored,
}

/// A whole tree as path -> node (sockets left out: layers never carry them).
pub fn tree(root: &Path, mtimes: Mtimes) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    let mut paths = Vec::new();
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            for e in fs::read_dir(&path).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        }
        paths.push(rel);
    }
    paths.sort();
    for rel in paths {
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let (kind, content) = if ft.is_socket() {
            continue;
        } else if ft.is_dir() {
            ("dir", String::new())
        } else if ft.is_file() {
            ("file", Digest::of(&fs::read(&path).unwrap()).to_string())
        } else if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(&path).unwrap().display().to_string(),
            )
        } else if ft.is_char_device() {
            ("char", String::new())
        } else if ft.is_block_device() {
            ("block", String::new())
        } else {
            ("fifo", String::new())
        };
        let link_group = (meta.nlink() > 1 && !ft.is_dir()).then(|| {
            inodes
                .entry((meta.dev(), meta.ino()))
                .or_insert_with(|| rel.clone())
                .clone()
        });
        let mut xattrs = xattrs(&path);
        xattrs.retain(|(n, _)| !n.starts_with("security.") && !n.contains(".overlay."));
        let mtime = if ft.is_dir() || mtimes == Mtimes::Ignored {
            0
        } else {
            meta.mtime()
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            meta.mode() & 0o7777
        };
        let node = Node {
            kind,
            mode,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime,
            content,
            rdev: meta.rdev(),
            xattrs,
            link_group,
        };
        out.insert(rel, node);
    }
    // Overlay reports the lower inode's link count even when the other links were copied up or deleted.
    let mut group_sizes = BTreeMap::new();
    for node in out.values() {
        *group_sizes.entry(node.link_group.clone()).or_insert(0) += 1;
    }
    for node in out.values_mut() {
        if group_sizes[&node.link_group] == 1 {
            node.link_group = None;
        }
    }
    out
}

fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) else {
        return Vec::new();
    };
    let mut out: Vec<_> = names[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let name = String::from_utf8_lossy(name).into_owned();
            let mut value = vec![0u8; 65536];
            let len = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]).unwrap();
            (name, value[..len].to_vec())
        })
        .collect();
    out.sort();
    out
}

/// Asserts two trees are identical, listing the differing paths.
pub fn assert_same_tree(a: &Path, b: &Path, mtimes: Mtimes) {
    let (ta, tb) = (tree(a, mtimes), tree(b, mtimes));
    let mut diffs = Vec::new();
    for path in ta
        .keys()
        .chain(tb.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (ta.get(path), tb.get(path)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => diffs.push(format!("{}:\n  {x:?}\n  {y:?}", path.display())),
        }
    }
    assert!(
        diffs.is_empty(),
        "{} and {} differ:\n{}",
        a.display(),
        b.display(),
        diffs.join("\n")
    );
}

/// The manifest of the image tagged `tag` in an OCI layout.
fn layout_manifest(layout: &Path, tag: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"));
    let digest: Digest = manifest["digest"].as_str().unwrap().parse().unwrap();
    read_json(layout, &digest)
}

fn read_json(layout: &Path, digest: &Digest) -> serde_json::Value {
    let store = ContentStore::open(layout).unwrap();
    serde_json::from_slice(&store.read_bytes(digest).unwrap()).unwrap()
}

fn digests(list: &serde_json::Value, field: Option<&str>) -> Vec<Digest> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            field
                .map_or(v, |f| &v[f])
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// The layer digests of the image tagged `tag` in an OCI layout, base first.
pub fn layout_layers(layout: &Path, tag: &str) -> Vec<Digest> {
    digests(&layout_manifest(layout, tag)["layers"], Some("digest"))
}

/// The (blob, diffID) pairs of the image tagged `tag` in an OCI layout, base first.
pub fn layout_layers_with_diff_ids(layout: &Path, tag: &str) -> Vec<(Digest, Digest)> {
    let manifest = layout_manifest(layout, tag);
    let config_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let config = read_json(layout, &config_digest);
    let blobs = digests(&manifest["layers"], Some("digest"));
    let diff_ids = digests(&config["rootfs"]["diff_ids"], None);
    assert_eq!(blobs.len(), diff_ids.len(), "{config}");
    blobs.into_iter().zip(diff_ids).collect()
}
