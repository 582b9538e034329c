//! Images unpacked into snapshots, checked against `umoci raw unpack` of the same layout.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{Mtimes, assert_same_tree, layout_layers_with_diff_ids};
use strata_snapshotter::metadata::RefTarget;
use strata_snapshotter::snapshot::{self, SnapshotterKind};
use strata_snapshotter::{
    ContentStore, Error, MetadataStore, SnapshotKind, mount_all, snapshot_key_of, unpack, unpack_referenced,
};
use strata_testkit::{busybox_layout, require_root, run};

/// A busybox layout tagged `latest` (one layer) and `two` (that layer plus one deleting and adding files).
fn two_images(dir: &Path) -> std::path::PathBuf {
    let layout = busybox_layout(dir);
    let bundle = dir.join("bundle");
    let latest = format!("{}:latest", layout.display());
    run(Command::new("umoci").args(["unpack", "--image", &latest]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    fs::remove_file(rootfs.join("bin/awk")).unwrap();
    fs::write(rootfs.join("etc/motd"), b"second layer\n").unwrap();
    let two = format!("{}:two", layout.display());
    run(Command::new("umoci").args(["repack", "--image", &two]).arg(&bundle));
    layout
}

/// What umoci makes of the image tagged `tag`, at `dir/umoci-TAG`.
fn umoci_rootfs(layout: &Path, tag: &str, dir: &Path) -> std::path::PathBuf {
    let rootfs = dir.join(format!("umoci-{tag}"));
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci").args(["raw", "unpack", "--image", &image]).arg(&rootfs));
    rootfs
}

fn unpacks_like_umoci(kind: SnapshotterKind) {
    let dir = tempfile::tempdir().unwrap();
    let layout = two_images(dir.path());
    let content = ContentStore::open(&layout).unwrap();
    let root = dir.path().join("root");
    let meta = Arc::new(MetadataStore::open(&root).unwrap());
    let snapshotter = snapshot::open(&root, meta.clone(), kind).unwrap();

    let base = layout_layers_with_diff_ids(&layout, "latest");
    let two = layout_layers_with_diff_ids(&layout, "two");
    assert_eq!((base.len(), two.len()), (1, 2));
    assert_eq!(two[0], base[0], "the images share their base layer");

    let base_key = unpack(&content, snapshotter.as_ref(), &base).unwrap();
    assert_eq!(base_key, base[0].1.to_string(), "a base layer's chain ID is its diffID");
    let top = unpack(&content, snapshotter.as_ref(), &two).unwrap();
    assert_eq!(Some(top.clone()), snapshot_key_of(&two));
    let snapshots = meta.snapshots().unwrap();
    assert_eq!(snapshots.len(), 2, "the base snapshot is shared: {snapshots:?}");
    assert!(snapshots.iter().all(|s| s.kind == SnapshotKind::Committed));
    assert_eq!(snapshots[1].parent.as_deref(), Some(base_key.as_str()));

    // Unpacking again applies nothing; for an owner, it references every layer's snapshot.
    assert_eq!(unpack_referenced(&meta, "image/two", &content, snapshotter.as_ref(), &two).unwrap(), top);
    assert_eq!(meta.snapshots().unwrap(), snapshots);
    let mut owned: Vec<String> = meta
        .refs()
        .unwrap()
        .into_iter()
        .filter_map(|(owner, target)| match target {
            RefTarget::Snapshot(key) if owner == "image/two" => Some(key),
            _ => None,
        })
        .collect();
    owned.sort();
    let mut expected = vec![base_key.clone(), top.clone()];
    expected.sort();
    assert_eq!(owned, expected, "the owner references both layers' snapshots");

    for (tag, key) in [("latest", &base_key), ("two", &top)] {
        let expected = umoci_rootfs(&layout, tag, dir.path());
        let view = format!("view-{tag}");
        let mounts = snapshotter.view(&view, Some(key)).unwrap();
        let target = dir.path().join(&view);
        fs::create_dir(&target).unwrap();
        let guard = mount_all(&mounts, &target).unwrap();
        assert_same_tree(&expected, &target, Mtimes::NotDirs);
        drop(guard);
        snapshotter.remove(&view).unwrap();
    }
}

#[test]
fn images_unpack_into_overlay_snapshots_like_umoci() {
    if require_root("images_unpack_into_overlay_snapshots_like_umoci") {
        unpacks_like_umoci(SnapshotterKind::Overlay);
    }
}

#[test]
fn images_unpack_into_native_snapshots_like_umoci() {
    if require_root("images_unpack_into_native_snapshots_like_umoci") {
        unpacks_like_umoci(SnapshotterKind::Native);
    }
}

#[test]
fn a_corrupt_layer_leaves_no_snapshot() {
    if !require_root("a_corrupt_layer_leaves_no_snapshot") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = busybox_layout(dir.path());
    let layers = layout_layers_with_diff_ids(&layout, "latest");
    let content = ContentStore::open(dir.path().join("content")).unwrap();
    // The blob's bytes with one flipped in the middle, stored under the original digest.
    let mut bytes = fs::read(ContentStore::open(&layout).unwrap().blob_path(&layers[0].0)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let blob = content.blob_path(&layers[0].0);
    fs::create_dir_all(blob.parent().unwrap()).unwrap();
    fs::write(&blob, &bytes).unwrap();

    let root = dir.path().join("root");
    let meta = Arc::new(MetadataStore::open(&root).unwrap());
    let snapshotter = snapshot::open(&root, meta.clone(), snapshot::probe(&root)).unwrap();
    let err = unpack(&content, snapshotter.as_ref(), &layers).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. } | Error::Io { .. } | Error::Apply { .. }), "{err}");
    assert_eq!(meta.snapshots().unwrap(), vec![], "nothing is committed or left active");
    assert!(fs::read_dir(root.join("snapshots")).unwrap().next().is_none(), "no snapshot directory is left");
}

#[test]
fn concurrent_unpacks_of_the_same_layers_share_one_snapshot_each() {
    if !require_root("concurrent_unpacks_of_the_same_layers_share_one_snapshot_each") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = two_images(dir.path());
    let layers = layout_layers_with_diff_ids(&layout, "two");
    let root = dir.path().join("root");
    let kind = snapshot::probe(&root);
    // Each unpacker opens the root on its own, as separate `strata` processes do.
    let tops: Vec<String> = std::thread::scope(|s| {
        let unpackers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let content = ContentStore::open(&layout).unwrap();
                    let meta = Arc::new(MetadataStore::open(&root).unwrap());
                    let snapshotter = snapshot::open(&root, meta, kind).unwrap();
                    unpack(&content, snapshotter.as_ref(), &layers).unwrap()
                })
            })
            .collect();
        unpackers.into_iter().map(|u| u.join().unwrap()).collect()
    });
    assert!(tops.iter().all(|t| Some(t) == snapshot_key_of(&layers).as_ref()), "{tops:?}");
    let snapshots = MetadataStore::open(&root).unwrap().snapshots().unwrap();
    let keys: Vec<&str> = snapshots.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "one committed snapshot per layer, no leftovers: {keys:?}");
    assert!(snapshots.iter().all(|s| s.kind == SnapshotKind::Committed));
    assert_eq!(fs::read_dir(root.join("snapshots")).unwrap().count(), 2, "the losers' directories are gone");
}
