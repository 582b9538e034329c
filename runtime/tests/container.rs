//! Real containers over a busybox rootfs: namespaces, filesystems, users, exit codes, mounts, network.

mod common;

use std::time::{Duration, Instant};

use common::{Busybox, run, runtime, stdout_of, tree};
use strata_runtime::{Error, Mount, Network, ProcessSpec, RlimitResource, Rootfs, Signal};
use strata_testkit::require_root;
use tokio::io::{AsyncBufReadExt, BufReader};

#[test]
fn the_command_is_pid_1_with_its_own_hostname_and_no_host_files() {
    if !require_root("the_command_is_pid_1_with_its_own_hostname_and_no_host_files") {
        return;
    }
    let busybox = Busybox::new();
    let marker = busybox.scratch("host-only");
    let script =
        format!("echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls {} 2>&1 || true", marker.display());
    let out = stdout_of(busybox.sh(&script).hostname("box"));
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines[..3], ["1", "box", &format!("sh -c {script} ")], "{out}");
    assert!(lines[3].contains("No such file or directory"), "host path visible: {out}");
}

#[test]
fn proc_and_dev_work() {
    if !require_root("proc_and_dev_work") {
        return;
    }
    let busybox = Busybox::new();
    let script = "echo gone > /dev/null && head -c 16 /dev/urandom | wc -c && head -c 4 /dev/zero | wc -c \
                  && ls /proc/self/fd | tr '\\n' ' ' && echo && ls /dev | tr '\\n' ' ' && echo && ls /dev/pts";
    let out = stdout_of(busybox.sh(script));
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines[..2], ["16", "4"], "{out}");
    assert_eq!(lines[2], "0 1 2 3 ", "only stdio and ls's own directory fd: {out}");
    for node in ["full", "fd", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty"] {
        assert!(lines[3].split(' ').any(|n| n == node), "/dev lacks {node}: {out}");
    }
    assert_eq!(lines[4], "ptmx", "devpts is a new instance: {out}");
}

#[test]
fn users_switch_like_docker() {
    if !require_root("users_switch_like_docker") {
        return;
    }
    let busybox = Busybox::new();
    let id = |user: &str| stdout_of(ProcessSpec::builder(Rootfs::Directory(busybox.rootfs()), ["id"]).user(user));
    // As `docker run busybox id` prints: the primary gid always leads the group list (CVE-2023-25173).
    assert_eq!(id("root"), "uid=0(root) gid=0(root) groups=0(root),10(wheel)");
    assert_eq!(id("daemon"), "uid=1(daemon) gid=1(daemon) groups=1(daemon)");
    assert_eq!(id("1:1"), "uid=1(daemon) gid=1(daemon) groups=1(daemon)");
    assert_eq!(id("sync:wheel"), "uid=4(sync) gid=10(wheel) groups=10(wheel)");
    assert_eq!(id("4242"), "uid=4242 gid=0(root) groups=0(root)");
    assert_eq!(stdout_of(busybox.sh("echo $HOME").user("daemon")), "/usr/sbin");
    let missing = ProcessSpec::builder(Rootfs::Directory(busybox.rootfs()), ["id"]).user("nosuchuser").build();
    let err = runtime().run_to_completion(&missing.unwrap(), None).unwrap_err().to_string();
    assert!(err.contains("no user named \"nosuchuser\" in /etc/passwd"), "{err}");
}

#[test]
fn exit_codes_and_signals() {
    if !require_root("exit_codes_and_signals") {
        return;
    }
    let busybox = Busybox::new();
    assert_eq!(run(busybox.sh("exit 3")).exit_code, 3);
    // The kernel shields PID 1 from signals sent inside its namespace, SIGKILL included: `kill -9 $$` does
    // nothing, as with runc and Docker. A signal from the kernel itself does kill it: RLIMIT_CPU's SIGKILL.
    assert_eq!(run(busybox.sh("kill -9 $$; echo survived")).exit_code, 0);
    let spin = busybox.sh("while :; do :; done").rlimit(RlimitResource::Cpu, 1, 1);
    assert_eq!(run(spin).exit_code, 137);
    assert_eq!(run(busybox.sh("sh -c 'kill -9 $$'; exit $?")).exit_code, 137, "a child killed by SIGKILL");
    let missing = ProcessSpec::builder(Rootfs::Directory(busybox.rootfs()), ["no-such-command"]).build().unwrap();
    let err = runtime().run_to_completion(&missing, None).unwrap_err();
    assert!(matches!(err, Error::Setup(_)) && err.to_string().contains("\"no-such-command\""), "{err}");
}

#[test]
fn env_cwd_and_home() {
    if !require_root("env_cwd_and_home") {
        return;
    }
    let busybox = Busybox::new();
    let out =
        stdout_of(busybox.sh("echo $GREETING; pwd; echo $HOME").env("GREETING", "hello world").cwd("/made/for/you"));
    assert_eq!(out, "hello world\n/made/for/you\n/root");
    assert_eq!(stdout_of(busybox.sh("echo $HOME").env("HOME", "/elsewhere")), "/elsewhere");
}

#[test]
fn binds_tmpfs_readonly_rootfs_and_rlimits() {
    if !require_root("binds_tmpfs_readonly_rootfs_and_rlimits") {
        return;
    }
    let busybox = Busybox::new();
    let shared = busybox.scratch("shared");
    std::fs::write(shared.join("in"), "from host\n").unwrap();
    let spec = busybox
        .sh("cat /ro/in; touch /ro/x 2>/dev/null && echo ro-writable; echo out > /rw/out; touch /scratch/t && echo tmpfs; \
             touch /x 2>/dev/null || echo rootfs-ro; ulimit -n")
        .bind(&shared, "/ro", true)
        .bind(&shared, "/rw", false)
        .tmpfs("/scratch")
        .readonly_rootfs(true)
        .rlimit(RlimitResource::Nofile, 123, 456);
    assert_eq!(stdout_of(spec), "from host\ntmpfs\nrootfs-ro\n123");
    assert_eq!(std::fs::read_to_string(shared.join("out")).unwrap(), "out\n");
}

#[test]
fn network_none_has_only_loopback_and_it_is_up() {
    if !require_root("network_none_has_only_loopback_and_it_is_up") {
        return;
    }
    let busybox = Busybox::new();
    let out = stdout_of(
        busybox.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip link show lo").network(Network::None),
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("lo"), "{out}");
    assert!(lines.next().is_some_and(|l| l.contains("<LOOPBACK,UP,LOWER_UP>")), "{out}");
    let host = stdout_of(busybox.sh("tail -n +3 /proc/net/dev | wc -l").network(Network::Host));
    let host_interfaces = std::fs::read_to_string("/proc/net/dev").unwrap().lines().count() - 2;
    assert_eq!(host, host_interfaces.to_string());
}

#[test]
fn an_overlay_rootfs_keeps_runtime_files_out_of_the_upper_dir() {
    if !require_root("an_overlay_rootfs_keeps_runtime_files_out_of_the_upper_dir") {
        return;
    }
    let busybox = Busybox::new();
    let (upper, work) = (busybox.scratch("upper"), busybox.scratch("work"));
    let overlay = overlay(&busybox.rootfs(), &upper, &work);
    let cache = busybox.scratch("cache");
    let secret = busybox.scratch("secrets").join("token");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let script = "cat /etc/hostname; ls /etc; echo x > /dev/shm/y; echo made > /new; touch /cache/hit; \
                  cat /run/secrets/token; echo leak > /run/secrets/token || echo secret-ro";
    let spec = ProcessSpec::builder(Rootfs::Mounts(vec![overlay]), ["sh", "-c", script])
        .hostname("layered")
        .bind(&cache, "/cache", false)
        .bind(&secret, "/run/secrets/token", true);
    let out = stdout_of(spec);
    assert!(out.starts_with("layered\ngroup\nhostname\nhosts\npasswd\nresolv.conf\nshadow"), "{out}");
    assert!(out.ends_with("s3cret\nsecret-ro"), "{out}");
    assert_eq!(tree(&upper), ["new"], "only the command's own writes belong in the layer");
    assert!(cache.join("hit").exists());
    assert!(!busybox.rootfs().join("etc/hosts").exists(), "the lower dir is untouched");
}

#[test]
fn mount_points_follow_the_images_symlinks_and_keep_its_directories() {
    if !require_root("mount_points_follow_the_images_symlinks_and_keep_its_directories") {
        return;
    }
    let busybox = Busybox::new();
    let rootfs = busybox.rootfs();
    std::fs::create_dir(rootfs.join("private")).unwrap();
    std::fs::rename(rootfs.join("etc"), rootfs.join("private/etc")).unwrap();
    std::os::unix::fs::symlink("/private/etc", rootfs.join("etc")).unwrap();
    std::fs::set_permissions(rootfs.join("private"), std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    let (upper, work) = (busybox.scratch("upper"), busybox.scratch("work"));
    let spec = ProcessSpec::builder(
        Rootfs::Mounts(vec![overlay(&rootfs, &upper, &work)]),
        ["sh", "-c", "readlink /etc; cat /private/etc/hostname; stat -c %a /private"],
    );
    assert_eq!(stdout_of(spec), "/private/etc\nstrata\n750");
    assert!(tree(&upper).is_empty(), "{:?}", tree(&upper));
}

fn overlay(lower: &std::path::Path, upper: &std::path::Path, work: &std::path::Path) -> Mount {
    Mount::overlay(&[lower.to_path_buf()], Some((upper, work)))
}

#[test]
fn a_directory_rootfs_gets_its_missing_mount_points_in_place() {
    if !require_root("a_directory_rootfs_gets_its_missing_mount_points_in_place") {
        return;
    }
    let busybox = Busybox::new();
    stdout_of(busybox.sh("true"));
    for file in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
        let path = busybox.rootfs().join(file);
        assert_eq!(std::fs::metadata(&path).map(|m| m.len()).ok(), Some(0), "{file} is an empty mount point");
    }
}

#[test]
fn a_read_only_bind_rootfs_runs_with_its_mount_points_made_in_the_source() {
    if !require_root("a_read_only_bind_rootfs_runs_with_its_mount_points_made_in_the_source") {
        return;
    }
    let busybox = Busybox::new();
    let view = Mount { fs_type: "bind".into(), source: busybox.rootfs(), options: vec!["rbind".into(), "ro".into()] };
    let spec = ProcessSpec::builder(Rootfs::Mounts(vec![view]), ["sh", "-c", "touch /x 2>/dev/null || hostname"]);
    assert_eq!(stdout_of(spec), "strata");
    assert!(busybox.rootfs().join("etc/hostname").is_file());
}

#[test]
fn capabilities_are_dockers_defaults_and_no_new_privs_is_set() {
    if !require_root("capabilities_are_dockers_defaults_and_no_new_privs_is_set") {
        return;
    }
    let busybox = Busybox::new();
    let caps = "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '";
    let expected = "CapInh: 0000000000000000\nCapPrm: 00000000a80425fb\nCapEff: 00000000a80425fb\n\
                    CapBnd: 00000000a80425fb\nCapAmb: 0000000000000000\nNoNewPrivs: 1";
    assert_eq!(stdout_of(busybox.sh(caps)), expected);
    let as_daemon = stdout_of(busybox.sh(caps).user("daemon"));
    assert!(as_daemon.contains("CapEff: 0000000000000000\nCapBnd: 00000000a80425fb"), "{as_daemon}");
}

#[test]
fn a_privileged_command_keeps_every_capability() {
    if !require_root("a_privileged_command_keeps_every_capability") {
        return;
    }
    let busybox = Busybox::new();
    // Every capability this test process has, which may be fewer than the kernel knows.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let all = status.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap().trim().to_owned();
    let caps = "grep -E '^(CapEff|CapBnd|CapAmb)' /proc/self/status | tr -s '\\t' ' '";
    let privileged = stdout_of(busybox.sh(caps).privileged(true));
    assert_eq!(privileged, format!("CapEff: {all}\nCapBnd: {all}\nCapAmb: 0000000000000000"));
}

#[test]
fn the_command_starts_with_default_signal_actions_even_when_the_caller_ignores_some() {
    if !require_root("the_command_starts_with_default_signal_actions_even_when_the_caller_ignores_some") {
        return;
    }
    // A caller started in the background of a script ignores SIGINT; Rust ignores SIGPIPE.
    // SAFETY: ignoring a signal installs no handler.
    unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigIgn) }.unwrap();
    let busybox = Busybox::new();
    let spec = ProcessSpec::builder(Rootfs::Directory(busybox.rootfs()), ["grep", "^Sig[BI]", "/proc/self/status"]);
    assert_eq!(stdout_of(spec).replace('\t', " "), "SigBlk: 0000000000000000\nSigIgn: 0000000000000000");
}

#[tokio::test]
async fn output_streams_while_the_command_runs_and_signals_reach_it() {
    if !require_root("output_streams_while_the_command_runs_and_signals_reach_it") {
        return;
    }
    let busybox = Busybox::new();
    let script = "trap 'echo bye; exit 42' TERM; echo ready; while :; do sleep 0.05; done";
    let mut container = runtime().spawn(&busybox.sh(script).build().unwrap()).unwrap();
    let mut lines = BufReader::new(container.stdout().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
    container.signal(Signal::SIGTERM).unwrap();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("bye"));
    assert_eq!(container.wait().await.unwrap(), 42);
}

#[test]
fn a_timeout_kills_the_whole_container() {
    if !require_root("a_timeout_kills_the_whole_container") {
        return;
    }
    let busybox = Busybox::new();
    let started = Instant::now();
    let spec = busybox.sh("sleep 30 & sleep 30 & wait").build().unwrap();
    let err = runtime().run_to_completion(&spec, Some(Duration::from_millis(300))).unwrap_err();
    assert!(matches!(err, Error::TimedOut(_)), "{err}");
    // Output pipes close only when every process holding them is gone, so returning at all proves the kill.
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn kill_ends_the_container_with_137() {
    if !require_root("kill_ends_the_container_with_137") {
        return;
    }
    let busybox = Busybox::new();
    let mut container = runtime().spawn(&busybox.sh("echo up; sleep 30").build().unwrap()).unwrap();
    let mut lines = BufReader::new(container.stdout().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("up"));
    container.kill().unwrap();
    assert_eq!(container.wait().await.unwrap(), 137);
}
