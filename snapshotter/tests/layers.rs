//! Layers end to end on real overlay mounts, checked against GNU tar and umoci.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{Mtimes, assert_same_tree, layout_layers};
use strata_snapshotter::snapshot::{self, SnapshotterKind};
use strata_snapshotter::{
    Compression, ContentStore, DiffOptions, MetadataStore, SnapshotLayout, Snapshotter, apply, apply_blob, diff,
    mount_all,
};
use strata_testkit::{busybox_layout, busybox_rootfs, require_root, require_tool, run};

struct Root {
    dir: tempfile::TempDir,
    store: ContentStore,
    snapshotter: Box<dyn Snapshotter>,
}

fn root(kind: SnapshotterKind) -> Root {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(MetadataStore::open(dir.path()).unwrap());
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    let snapshotter = snapshot::open(dir.path(), meta, kind).unwrap();
    Root { dir, store, snapshotter }
}

/// Prepares `key` on `parent`, mounts it, lets `change` edit the mounted tree, unmounts and commits as `name`.
fn build(r: &Root, key: &str, name: &str, parent: Option<&str>, change: impl FnOnce(&Path)) {
    let mounts = r.snapshotter.prepare(key, parent).unwrap();
    let target = r.dir.path().join(format!("mnt-{key}"));
    fs::create_dir(&target).unwrap();
    let guard = mount_all(&mounts, &target).unwrap();
    change(&target);
    guard.unmount().unwrap();
    r.snapshotter.commit(name, key).unwrap();
}

/// Mounts a read-only view of `parent` and runs `check` on it.
fn with_view(r: &Root, parent: &str, check: impl FnOnce(&Path)) {
    let key = format!("view-{parent}");
    let mounts = r.snapshotter.view(&key, Some(parent)).unwrap();
    let target = r.dir.path().join(format!("mnt-{key}"));
    fs::create_dir(&target).unwrap();
    let guard = mount_all(&mounts, &target).unwrap();
    check(&target);
    drop(guard);
    r.snapshotter.remove(&key).unwrap();
}

fn base_tree(dir: &Path) {
    fs::create_dir_all(dir.join("etc/conf.d")).unwrap();
    fs::write(dir.join("etc/conf.d/a.conf"), b"a=1\n").unwrap();
    fs::write(dir.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::write(dir.join("usr/bin/tool"), vec![7u8; 200_000]).unwrap();
    fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(dir.join("usr/bin/tool"), dir.join("usr/bin/tool-alias")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/tool", dir.join("usr/bin/abs-link")).unwrap();
    std::os::unix::fs::symlink("../etc/hosts", dir.join("usr/rel-link")).unwrap();
    let deep = dir.join("deep").join("x".repeat(120)).join("y".repeat(120));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("z".repeat(150)), b"long name").unwrap();
    fs::create_dir_all(dir.join("dev")).unwrap();
    let nod = |name: &str, ft, dev| {
        rustix::fs::mknodat(rustix::fs::CWD, dir.join(name), ft, rustix::fs::Mode::from_raw_mode(0o640), dev).unwrap()
    };
    nod("dev/null", rustix::fs::FileType::CharacterDevice, rustix::fs::makedev(1, 3));
    nod("dev/loop9", rustix::fs::FileType::BlockDevice, rustix::fs::makedev(7, 9));
    nod("dev/fifo", rustix::fs::FileType::Fifo, 0);
    rustix::fs::lsetxattr(dir.join("etc/hosts"), "user.origin", b"strata", rustix::fs::XattrFlags::empty()).unwrap();
    rustix::fs::lsetxattr(dir.join("etc/hosts"), "trusted.secret", b"\x00\x01", rustix::fs::XattrFlags::empty())
        .unwrap();
    rustix::fs::chownat(
        rustix::fs::CWD,
        dir.join("etc/conf.d"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(3_000_000)),
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    let sock = std::os::unix::net::UnixListener::bind(dir.join("etc/ignored.sock")).unwrap();
    drop(sock);
}

fn second_tree(dir: &Path) {
    fs::remove_file(dir.join("etc/hosts")).unwrap();
    fs::remove_dir_all(dir.join("etc/conf.d")).unwrap();
    fs::create_dir(dir.join("etc/conf.d")).unwrap();
    fs::write(dir.join("etc/conf.d/b.conf"), b"b=2\n").unwrap();
    fs::write(dir.join("usr/bin/tool"), b"replaced").unwrap();
    fs::remove_dir_all(dir.join("deep")).unwrap();
    fs::write(dir.join("new-file"), b"new").unwrap();
}

#[test]
fn overlay_layers_match_tar_and_the_mounted_tree() {
    if !require_root("overlay_layers_match_tar_and_the_mounted_tree") {
        return;
    }
    require_tool("tar");
    let r = root(SnapshotterKind::Overlay);
    build(&r, "k1", "l1", None, base_tree);
    build(&r, "k2", "l2", Some("l1"), second_tree);
    let options = DiffOptions::new().source_date_epoch(2_000_000_000);
    let l1 = diff(&r.snapshotter.layout("l1").unwrap(), &r.store, &options).unwrap();
    let l2 = diff(&r.snapshotter.layout("l2").unwrap(), &r.store, &options).unwrap();
    assert_eq!(l1.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    assert_eq!(l1.size, r.store.size(&l1.digest).unwrap());
    r.store.verify(&l2.digest).unwrap();

    // GNU tar unpacks the base layer to exactly what was mounted.
    let by_tar = r.dir.path().join("by-tar");
    fs::create_dir(&by_tar).unwrap();
    run(Command::new("tar")
        .args(["-xzf"])
        .arg(r.store.blob_path(&l1.digest))
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-p", "-C"])
        .arg(&by_tar));
    with_view(&r, "l1", |view| assert_same_tree(view, &by_tar, Mtimes::NotDirs));

    // strata applies both layers onto a plain directory to exactly the overlay's merged view.
    let applied = r.dir.path().join("applied");
    fs::create_dir(&applied).unwrap();
    let layout = SnapshotLayout::Full { dir: applied.clone(), parent: None };
    assert_eq!(apply_blob(&r.store, &l1.digest, &layout).unwrap().diff_id, l1.diff_id);
    assert_eq!(apply_blob(&r.store, &l2.digest, &layout).unwrap().diff_id, l2.diff_id);
    with_view(&r, "l2", |view| assert_same_tree(view, &applied, Mtimes::NotDirs));
    assert!(!applied.join("etc/hosts").exists() && !applied.join("etc/conf.d/a.conf").exists());

    // The same layers applied as overlay layers give the same merged view again.
    r.snapshotter.prepare("u1", None).unwrap();
    apply_blob(&r.store, &l1.digest, &r.snapshotter.layout("u1").unwrap()).unwrap();
    r.snapshotter.commit("u1c", "u1").unwrap();
    r.snapshotter.prepare("u2", Some("u1c")).unwrap();
    apply_blob(&r.store, &l2.digest, &r.snapshotter.layout("u2").unwrap()).unwrap();
    r.snapshotter.commit("u2c", "u2").unwrap();
    with_view(&r, "u2c", |view| assert_same_tree(view, &applied, Mtimes::NotDirs));
}

#[test]
fn native_diff_by_comparison_matches_the_overlay_result() {
    if !require_root("native_diff_by_comparison_matches_the_overlay_result") {
        return;
    }
    let r = root(SnapshotterKind::Native);
    build(&r, "k1", "l1", None, base_tree);
    build(&r, "k2", "l2", Some("l1"), second_tree);
    let options = DiffOptions::new().compression(Compression::Zstd);
    let l1 = diff(&r.snapshotter.layout("l1").unwrap(), &r.store, &options).unwrap();
    let l2 = diff(&r.snapshotter.layout("l2").unwrap(), &r.store, &options).unwrap();
    assert_eq!(l2.media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
    let applied = r.dir.path().join("applied");
    fs::create_dir(&applied).unwrap();
    let layout = SnapshotLayout::Full { dir: applied.clone(), parent: None };
    apply_blob(&r.store, &l1.digest, &layout).unwrap();
    apply_blob(&r.store, &l2.digest, &layout).unwrap();
    let SnapshotLayout::Full { dir: l2_dir, .. } = r.snapshotter.layout("l2").unwrap() else {
        panic!("native is full")
    };
    assert_same_tree(&l2_dir, &applied, Mtimes::NotDirs);
    // Only what changed is in the second layer: the untouched hardlinked alias and symlinks are not.
    let listing = run(Command::new("tar").arg("--zstd").arg("-tf").arg(r.store.blob_path(&l2.digest)));
    assert!(listing.contains("etc/.wh.hosts") && listing.contains(".wh.deep"), "{listing}");
    assert!(!listing.contains("abs-link") && !listing.contains("rel-link"), "{listing}");
}

#[test]
fn digests_are_reproducible_with_source_date_epoch() {
    if !require_root("digests_are_reproducible_with_source_date_epoch") {
        return;
    }
    let digests: Vec<_> = (0..2)
        .map(|_| {
            let r = root(SnapshotterKind::Overlay);
            build(&r, "k", "l", None, base_tree);
            [Compression::Gzip, Compression::Zstd, Compression::Uncompressed].map(|c| {
                let options = DiffOptions::new().compression(c).source_date_epoch(1_700_000_000);
                diff(&r.snapshotter.layout("l").unwrap(), &r.store, &options).unwrap().digest
            })
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn busybox_layer_made_by_umoci_applies() {
    if !require_root("busybox_layer_made_by_umoci_applies") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = busybox_layout(dir.path());
    let store = ContentStore::open(&layout).unwrap();
    let layers = layout_layers(&layout, "latest");
    assert_eq!(layers.len(), 1);
    let applied = dir.path().join("applied");
    fs::create_dir(&applied).unwrap();
    apply_blob(&store, &layers[0], &SnapshotLayout::Full { dir: applied.clone(), parent: None }).unwrap();
    let expected = dir.path().join("expected");
    busybox_rootfs(&expected);
    assert_same_tree(&expected, &applied, Mtimes::Ignored);
}

#[test]
fn umoci_whiteouts_and_opaque_dirs_apply() {
    if !require_root("umoci_whiteouts_and_opaque_dirs_apply") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = busybox_layout(dir.path());
    let image = format!("{}:latest", layout.display());
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci").args(["unpack", "--image", &image]).arg(&bundle));
    let rootfs = bundle.join("rootfs");
    fs::remove_file(rootfs.join("bin/awk")).unwrap();
    fs::remove_dir_all(rootfs.join("var")).unwrap();
    fs::create_dir_all(rootfs.join("var/www")).unwrap();
    fs::write(rootfs.join("var/www/index.html"), b"hi").unwrap();
    fs::write(rootfs.join("etc/motd"), b"welcome").unwrap();
    run(Command::new("umoci").args(["repack", "--image", &image]).arg(&bundle));
    let layers = layout_layers(&layout, "latest");
    assert_eq!(layers.len(), 2);

    let store = ContentStore::open(&layout).unwrap();
    let applied = dir.path().join("applied");
    fs::create_dir(&applied).unwrap();
    let target = SnapshotLayout::Full { dir: applied.clone(), parent: None };
    for layer in &layers {
        apply_blob(&store, layer, &target).unwrap();
    }
    // umoci rounds mtimes to the nearest second (Go's tar), so they may not match the bundle.
    assert_same_tree(&rootfs, &applied, Mtimes::Ignored);
    assert!(!applied.join("bin/awk").exists() && !applied.join("var/spool").exists());

    // The same on overlay: each layer in its own snapshot, whiteouts as overlay devices and xattrs.
    let r = root(SnapshotterKind::Overlay);
    let mut parent: Option<String> = None;
    for (i, layer) in layers.iter().enumerate() {
        r.snapshotter.prepare(&format!("p{i}"), parent.as_deref()).unwrap();
        apply_blob(&store, layer, &r.snapshotter.layout(&format!("p{i}")).unwrap()).unwrap();
        r.snapshotter.commit(&format!("c{i}"), &format!("p{i}")).unwrap();
        parent = Some(format!("c{i}"));
    }
    with_view(&r, "c1", |view| assert_same_tree(&rootfs, view, Mtimes::Ignored));
}

#[test]
fn strata_layer_unpacks_with_umoci() {
    if !require_root("strata_layer_unpacks_with_umoci") {
        return;
    }
    let r = root(SnapshotterKind::Overlay);
    build(&r, "k1", "l1", None, busybox_rootfs);
    let layer = diff(&r.snapshotter.layout("l1").unwrap(), &r.store, &DiffOptions::new()).unwrap();
    // A hand-written OCI layout around the strata layer.
    let layout = r.dir.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::copy(r.store.blob_path(&layer.digest), blobs.join(layer.digest.hex())).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]}
    })
    .to_string();
    let config_digest = strata_snapshotter::Digest::of(config.as_bytes());
    fs::write(blobs.join(config_digest.hex()), &config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest.to_string(), "size": layer.size}]
    })
    .to_string();
    let manifest_digest = strata_snapshotter::Digest::of(manifest.as_bytes());
    fs::write(blobs.join(manifest_digest.hex()), &manifest).unwrap();
    fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest.to_string(),
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    let bundle = r.dir.path().join("bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:latest", layout.display())).arg(&bundle));
    with_view(&r, "l1", |view| assert_same_tree(view, &bundle.join("rootfs"), Mtimes::NotDirs));
}

#[test]
fn a_corrupted_blob_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    let layer = diff(&SnapshotLayout::Full { dir: src, parent: None }, &store, &DiffOptions::new()).unwrap();
    let mut bytes = fs::read(store.blob_path(&layer.digest)).unwrap();
    let wrong = strata_snapshotter::Digest::of(b"something else");
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let err = apply(&bytes[..], Some(&wrong), &SnapshotLayout::Full { dir: out, parent: None }).unwrap_err();
    assert!(matches!(err, strata_snapshotter::Error::DigestMismatch { .. }), "{err}");
    bytes.truncate(bytes.len() / 2);
    let out = dir.path().join("out2");
    fs::create_dir(&out).unwrap();
    assert!(apply(&bytes[..], None, &SnapshotLayout::Full { dir: out, parent: None }).is_err());
}

#[test]
fn gnu_tar_layers_with_an_opaque_dir_and_whiteouts_apply() {
    if !require_root("gnu_tar_layers_with_an_opaque_dir_and_whiteouts_apply") {
        return;
    }
    require_tool("tar");
    let dir = tempfile::tempdir().unwrap();
    let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
    for d in ["etc/sub", "bin"] {
        fs::create_dir_all(lower.join(d)).unwrap();
    }
    for f in ["etc/a", "etc/sub/b", "bin/x", "bin/keep"] {
        fs::write(lower.join(f), f).unwrap();
    }
    // Docker's layer format as GNU tar writes it from a directory: marker files are plain empty files.
    for d in ["etc", "bin"] {
        fs::create_dir_all(upper.join(d)).unwrap();
    }
    for f in ["etc/.wh..wh..opq", "etc/new", "bin/.wh.x", "bin/y"] {
        fs::write(upper.join(f), if f.contains(".wh.") { "" } else { f }).unwrap();
    }
    let layers: Vec<_> = [&lower, &upper]
        .iter()
        .enumerate()
        .map(|(i, src)| {
            let blob = dir.path().join(format!("l{i}.tar.gz"));
            run(Command::new("tar").arg("-czf").arg(&blob).arg("-C").arg(src).arg("."));
            blob
        })
        .collect();
    let expected = dir.path().join("expected");
    for f in ["etc/new", "bin/keep", "bin/y"] {
        fs::create_dir_all(expected.join(f).parent().unwrap()).unwrap();
        let source = if upper.join(f).exists() { upper.join(f) } else { lower.join(f) };
        fs::copy(source, expected.join(f)).unwrap();
    }

    let applied = dir.path().join("applied");
    fs::create_dir(&applied).unwrap();
    let target = SnapshotLayout::Full { dir: applied.clone(), parent: None };
    for blob in &layers {
        apply(fs::File::open(blob).unwrap(), None, &target).unwrap();
    }
    assert_same_tree(&expected, &applied, Mtimes::Ignored);

    let r = root(SnapshotterKind::Overlay);
    let mut parent: Option<String> = None;
    for (i, blob) in layers.iter().enumerate() {
        r.snapshotter.prepare(&format!("p{i}"), parent.as_deref()).unwrap();
        apply(fs::File::open(blob).unwrap(), None, &r.snapshotter.layout(&format!("p{i}")).unwrap()).unwrap();
        r.snapshotter.commit(&format!("c{i}"), &format!("p{i}")).unwrap();
        parent = Some(format!("c{i}"));
    }
    with_view(&r, "c1", |view| assert_same_tree(&expected, view, Mtimes::Ignored));
}
