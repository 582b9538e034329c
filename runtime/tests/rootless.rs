//! Without root: the test re-runs itself as nobody (uid 65534, no /etc/subuid range) with setpriv, and the
//! container must run as root of a user namespace mapped to nobody, or fail saying why.

mod common;

use std::process::Command;

use common::{Busybox, runtime};
use strata_runtime::{Network, ProcessSpec, Rootfs};
use strata_testkit::{require_root, require_tool};

/// Set in the re-run: the rootfs to use, which means "you are the unprivileged half".
const ROOTFS_VAR: &str = "STRATA_ROOTLESS_ROOTFS";

#[test]
fn nobody_runs_a_rootless_container_and_is_told_why_other_users_fail() {
    if std::env::var_os(ROOTFS_VAR).is_some() || !require_root("nobody_runs_a_rootless_container") {
        return;
    }
    require_tool("setpriv");
    let busybox = Busybox::new();
    // A rootless user's rootfs is its own (as its snapshots are): the runtime creates mount points in it.
    strata_testkit::run(Command::new("chown").args(["-R", "65534:65534"]).arg(busybox.rootfs()));
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "rootless_half", "--nocapture", "--test-threads=1"])
        .env(ROOTFS_VAR, busybox.rootfs())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the unprivileged half failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the unprivileged half did not run:\n{stdout}\n{stderr}");
}

/// The unprivileged half; does nothing in a normal test run.
#[test]
fn rootless_half() {
    let Some(rootfs) = std::env::var_os(ROOTFS_VAR) else { return };
    assert_ne!(nix_geteuid(), 0, "the rootless half must not run as root");
    let spec = |args: &[&str]| ProcessSpec::builder(Rootfs::Directory(rootfs.clone().into()), args.to_vec());
    let done = runtime()
        .run_to_completion(&spec(&["sh", "-c", "id; echo $$; hostname"]).network(Network::None).build().unwrap(), None)
        .unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert_eq!((done.exit_code, stdout.as_ref()), (0, "uid=0(root) gid=0(root)\n1\nstrata\n"), "{done:?}");
    // Host network: sysfs cannot be mounted from this namespace, so /sys is the host's, read-only.
    let done = runtime().run_to_completion(&spec(&["ls", "/sys/class/net"]).build().unwrap(), None).unwrap();
    assert_eq!(done.exit_code, 0, "{done:?}");
    // Overlay in a user namespace (Linux 5.11+); the upper dir gets only the command's writes.
    let scratch = tempfile::tempdir().unwrap();
    let (upper, work) = (scratch.path().join("upper"), scratch.path().join("work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let overlay = strata_runtime::Mount {
        fs_type: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            format!("lowerdir={}", std::path::Path::new(&rootfs).display()),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ],
    };
    let on_overlay =
        ProcessSpec::builder(Rootfs::Mounts(vec![overlay]), ["sh", "-c", "echo hi > /hello; cat /etc/hostname"]);
    let done = runtime().run_to_completion(&on_overlay.build().unwrap(), None).unwrap();
    assert_eq!((done.exit_code, String::from_utf8_lossy(&done.stdout).as_ref()), (0, "strata\n"), "{done:?}");
    assert_eq!(common::tree(&upper), ["hello"]);
    // No subordinate ids for nobody: other users do not exist in the namespace, and the error says so.
    let err = runtime().run_to_completion(&spec(&["id"]).user("daemon").build().unwrap(), None).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("not mapped in this user namespace") && err.contains("/etc/subuid"), "{err}");
}

fn nix_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc_geteuid() }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
