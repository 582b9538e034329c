//! Several real processes on one root: concurrent writers, and writers SIGKILLed at random points.
//!
//! The children are this test binary re-executed with `STRATA_TEST_CHILD=<root>`: the `child` test then
//! writes blobs and metadata records in a loop (forever, or `STRATA_TEST_ROUNDS` times).

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_snapshotter::metadata::{RefTarget, cache_owner, image_owner};
use strata_snapshotter::{ContentStore, MetadataStore, SnapshotKind};

const CHILD_ROOT: &str = "STRATA_TEST_CHILD";
const CHILD_ROUNDS: &str = "STRATA_TEST_ROUNDS";

/// The child's body; a no-op when run as an ordinary test.
#[test]
fn child() {
    let Some(root) = std::env::var_os(CHILD_ROOT) else {
        return;
    };
    let root = Path::new(&root);
    let rounds: u64 = std::env::var(CHILD_ROUNDS).ok().and_then(|r| r.parse().ok()).unwrap_or(u64::MAX);
    let store = ContentStore::open(root.join("content")).unwrap();
    let meta = MetadataStore::open(root).unwrap();
    let pid = std::process::id();
    for i in 0..rounds {
        // Blobs big enough that a kill often lands mid-write.
        let payload: Vec<u8> = format!("{pid}-{i}-").bytes().cycle().take(64 * 1024 + (i as usize % 4096)).collect();
        let digest = store.write_bytes(&payload).unwrap();
        let name = format!("img-{pid}-{i}");
        meta.put_image(&name, &digest).unwrap();
        meta.add_ref(&image_owner(&name), &RefTarget::Blob(digest.clone())).unwrap();
        meta.put_cache(&format!("key-{pid}-{i}"), &serde_json::json!({ "blob": digest.to_string() })).unwrap();
        meta.add_ref(&cache_owner(&format!("key-{pid}-{i}")), &RefTarget::Blob(digest)).unwrap();
        let key = format!("snap-{pid}-{i}");
        meta.insert_snapshot(&key, None, SnapshotKind::Active).unwrap();
        meta.commit_snapshot(&key, &format!("{key}-c"), i).unwrap();
    }
}

fn spawn_child(root: &Path, rounds: Option<u64>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--test-threads=1"]).env(CHILD_ROOT, root).stdout(std::process::Stdio::null());
    if let Some(rounds) = rounds {
        cmd.env(CHILD_ROUNDS, rounds.to_string());
    }
    cmd.spawn().unwrap()
}

/// Every image record points at a blob that exists and hashes to its name; the database answers.
fn assert_consistent(root: &Path) -> usize {
    let store = ContentStore::open(root.join("content")).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(root.join("content/ingest")).unwrap().collect();
    assert!(leftovers.is_empty(), "temp files survived open: {leftovers:?}");
    for (digest, _) in store.walk().unwrap() {
        store.verify(&digest).unwrap();
    }
    let meta = MetadataStore::open(root).unwrap();
    let images = meta.images().unwrap();
    for image in &images {
        assert!(store.exists(&image.manifest), "{} points at a missing blob", image.name);
    }
    meta.refs().unwrap();
    meta.caches().unwrap();
    meta.snapshots().unwrap();
    images.len()
}

#[test]
fn concurrent_processes_and_threads_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..2).map(|_| spawn_child(dir.path(), Some(40))).collect();
    std::thread::scope(|s| {
        for t in 0..2 {
            let root = dir.path();
            s.spawn(move || {
                let meta = MetadataStore::open(root).unwrap();
                for i in 0..40 {
                    meta.put_image(&format!("thread-{t}-{i}"), &strata_snapshotter::Digest::of(&[t, i])).unwrap();
                }
            });
        }
    });
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let meta = MetadataStore::open(dir.path()).unwrap();
    assert_eq!(meta.images().unwrap().len(), 4 * 40);
    assert_eq!(meta.snapshots().unwrap().len(), 2 * 40);
}

#[test]
fn writers_killed_at_random_points_leave_a_consistent_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64 | 1;
    for _ in 0..30 {
        let mut child = spawn_child(dir.path(), None);
        // xorshift: a different kill point every round, no dependency needed.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 180));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let images = assert_consistent(dir.path());
    assert!(images > 0, "the children never got to write anything");
}
