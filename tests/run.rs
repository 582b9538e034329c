//! `strata run` end to end: the binary re-executes itself as the container init.

use assert_cmd::Command;
use strata_testkit::{busybox_layout, busybox_rootfs, require_root};

fn strata() -> Command {
    Command::cargo_bin("strata").unwrap()
}

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
    assert_eq!(stdout.trim(), "1 hi\n/tmp\nuid=1(daemon) gid=1(daemon)\nro\n    lo");
    assert!(!rootfs.join("left-behind").exists() && !rootfs.join("etc/hosts").exists(), "the image is not modified");
}

#[test]
fn run_uses_the_oci_image_config_and_entrypoint_override() {
    if !require_root("run_uses_the_oci_image_config_and_entrypoint_override") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = busybox_layout(dir.path());
    let image = format!("oci:{}:latest", layout.display());
    // The image's Cmd is `sh`, with no stdin: it exits 0 at once.
    strata().args(["run", &image]).assert().success();
    let out = strata().args(["run", &image, "sh", "-c", "echo $PATH; ls /bin/busybox"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/bin/busybox\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = strata().args(["run", "--entrypoint", "echo", &image, "over", "ridden"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over ridden\n");
    let out = strata().args(["run", "-u", "nosuchuser", &image, "id"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named \"nosuchuser\""));
}
