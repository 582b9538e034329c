//! `strata run` end to end: the binary re-executes itself as the container init.

mod common;

use common::{BusyboxRegistry, strata};
use strata_testkit::{busybox_rootfs, require_root};

#[test]
fn run_over_a_rootfs_directory_passes_options_and_the_exit_code() {
    if !require_root("run_over_a_rootfs_directory_passes_options_and_the_exit_code") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let image = format!("dir:{}", rootfs.display());
    let script = "echo $$ $GREETING; pwd; id; touch /data/x 2>/dev/null || echo ro; cut -d: -f1 /proc/net/dev | tail -n +3; \
                  touch /left-behind; exit 5";
    let out = strata()
        .args(["run", "--rm", "-e", "GREETING=hi", "-w", "/tmp", "-u", "daemon", "--network", "none"])
        .arg("-v")
        .arg(format!("{}:/data:ro", shared.display()))
        .args([&image, "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "1 hi\n/tmp\nuid=1(daemon) gid=1(daemon) groups=1(daemon)\nro\n    lo");
    assert!(!rootfs.join("left-behind").exists() && !rootfs.join("etc/hosts").exists(), "the image is not modified");
}

#[test]
fn run_pulls_a_missing_image_and_uses_its_config_and_entrypoint_override() {
    if !require_root("run_pulls_a_missing_image_and_uses_its_config_and_entrypoint_override") {
        return;
    }
    let busybox = BusyboxRegistry::start();
    let image = busybox.image.as_str();
    // Not in the store yet: pulled, unpacked, then run. The image's Cmd is `sh`, with no stdin: it exits 0.
    let out = busybox.strata().args(["run", image]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pulling"));
    let out = busybox
        .strata()
        .args(["run", image, "sh", "-c", "echo $PATH; ls /bin/busybox; touch /left-behind"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/bin/busybox\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("pulling"), "the second run uses the store");
    let out = busybox.strata().args(["run", image, "ls", "/left-behind"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "writes are discarded with the container's snapshot");
    let out = busybox.strata().args(["run", "--entrypoint", "echo", image, "over", "ridden"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over ridden\n");
    let out = busybox.strata().args(["run", "-u", "nosuchuser", image, "id"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named \"nosuchuser\""));
    let snapshots = busybox.ok(&["du", "--verbose"]);
    assert!(!snapshots.contains("run-"), "no container snapshot is left behind:\n{snapshots}");
}
