//! Without root: the test re-runs itself as nobody (uid 65534) with setpriv. Without subordinate ids the
//! container runs as root of a user namespace mapped to nobody, and other users fail saying why; with an
//! `/etc/subuid` range (in an overlay over `/etc` in a private mount namespace, so the host is not touched)
//! newuidmap maps the image's other users too.

mod common;

use std::process::Command;

use common::{Busybox, runtime, tree};
use strata_runtime::{Mount, Network, ProcessSpec, Rootfs};
use strata_testkit::{require_root, require_tool, run};

/// Set in the re-run: the rootfs to use, which means "you are the unprivileged half".
const ROOTFS_VAR: &str = "STRATA_ROOTLESS_ROOTFS";

#[test]
fn nobody_runs_rootless_containers_mapping_only_itself() {
    if std::env::var_os(ROOTFS_VAR).is_some() || !require_root("nobody_runs_rootless_containers_mapping_only_itself") {
        return;
    }
    run_half_as_nobody("half_without_subordinate_ids", None);
}

#[test]
fn nobody_with_subordinate_ids_gets_the_images_users() {
    if std::env::var_os(ROOTFS_VAR).is_some() || !require_root("nobody_with_subordinate_ids_gets_the_images_users") {
        return;
    }
    require_tool("newuidmap");
    run_half_as_nobody("half_with_subordinate_ids", Some("nobody:200000:65536\n"));
}

/// Runs the test `half` of this binary as nobody over a busybox rootfs nobody owns (as a rootless user owns
/// its snapshots: the runtime creates mount points in it), with `subids` as /etc/subuid and /etc/subgid.
fn run_half_as_nobody(half: &str, subids: Option<&str>) {
    require_tool("setpriv");
    let busybox = Busybox::new();
    run(Command::new("chown").args(["-R", "65534:65534"]).arg(busybox.rootfs()));
    let mut script = String::from("set -e; ");
    if let Some(ranges) = subids {
        // An overlay over /etc in the private mount namespace: the host's files stay as they are.
        let (upper, work) = (busybox.scratch("etc-upper"), busybox.scratch("etc-work"));
        std::fs::write(upper.join("subuid"), ranges).unwrap();
        std::fs::write(upper.join("subgid"), ranges).unwrap();
        script += &format!(
            "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc; ",
            upper.display(),
            work.display()
        );
    }
    script += "exec setpriv --reuid=65534 --regid=65534 --clear-groups -- \"$@\"";
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script, "sh"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", half, "--nocapture", "--test-threads=1"])
        .env(ROOTFS_VAR, busybox.rootfs())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the unprivileged half failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the unprivileged half did not run:\n{stdout}\n{stderr}");
}

/// The rootfs of an unprivileged half; `None` in a normal test run, where the halves do nothing.
fn unprivileged_rootfs() -> Option<std::path::PathBuf> {
    let rootfs = std::env::var_os(ROOTFS_VAR)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    assert_ne!(unsafe { geteuid() }, 0, "the unprivileged half must not run as root");
    Some(rootfs.into())
}

unsafe extern "C" {
    fn geteuid() -> u32;
}

fn stdout_of(spec: strata_runtime::ProcessSpecBuilder) -> String {
    let done = runtime().run_to_completion(&spec.build().unwrap(), None).unwrap();
    assert_eq!(done.exit_code, 0, "{done:?}");
    String::from_utf8_lossy(&done.stdout).into_owned()
}

#[test]
fn half_without_subordinate_ids() {
    let Some(rootfs) = unprivileged_rootfs() else { return };
    let spec = |args: &[&str]| ProcessSpec::builder(Rootfs::Directory(rootfs.clone()), args.to_vec());
    let out = stdout_of(spec(&["sh", "-c", "id; echo $$; hostname"]).network(Network::None));
    assert_eq!(out, "uid=0(root) gid=0(root)\n1\nstrata\n", "no supplementary groups: setgroups is denied");
    // Host network: sysfs cannot be mounted from this namespace, so /sys is the host's, read-only.
    stdout_of(spec(&["ls", "/sys/class/net"]));
    // Overlay in a user namespace (Linux 5.11+); the upper dir gets only the command's writes.
    let scratch = tempfile::tempdir().unwrap();
    let (upper, work) = (scratch.path().join("upper"), scratch.path().join("work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let overlay = Mount::overlay(&[rootfs.to_path_buf()], Some((&upper, &work)));
    let on_overlay =
        ProcessSpec::builder(Rootfs::Mounts(vec![overlay]), ["sh", "-c", "echo hi > /hello; cat /etc/hostname"]);
    assert_eq!(stdout_of(on_overlay), "strata\n");
    assert_eq!(tree(&upper), ["hello"]);
    // Overlayfs leaves work/work with mode 000, which only root may remove as it is.
    std::fs::set_permissions(work.join("work"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // No subordinate ids: other users do not exist in the namespace, and the error says so.
    let err = runtime().run_to_completion(&spec(&["id"]).user("daemon").build().unwrap(), None).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("not mapped in this user namespace") && err.contains("/etc/subuid"), "{err}");
}

#[test]
fn half_with_subordinate_ids() {
    let Some(rootfs) = unprivileged_rootfs() else { return };
    let id = |user: &str| stdout_of(ProcessSpec::builder(Rootfs::Directory(rootfs.clone()), ["id"]).user(user));
    assert_eq!(id("root"), "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n");
    assert_eq!(id("daemon"), "uid=1(daemon) gid=1(daemon) groups=1(daemon)\n");
    assert_eq!(id("4242:7"), "uid=4242 gid=7(lp) groups=7(lp)\n");
}
