//! `strata build` RUN options on real builds: `--security=insecure` with `--allow security.insecure`,
//! `--network` per step and for the build, and `--ssh` forwarding a real `ssh-agent`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::BusyboxRegistry;

/// Writes a context whose Dockerfile is `FROM <busybox>` followed by `steps`.
fn context(registry: &BusyboxRegistry, name: &str, steps: &str) -> PathBuf {
    let dir = registry.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {}\n{steps}", registry.image)).unwrap();
    dir
}

/// Builds `context` with `flags` and plain progress; returns whether it succeeded and standard error.
fn build(registry: &BusyboxRegistry, context: &Path, flags: &[&str]) -> (bool, String) {
    let out = registry.strata().args(["build", "--progress", "plain"]).args(flags).arg(context).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The hex value of the `CapEff:` line a step printed.
fn cap_eff(err: &str) -> &str {
    err.lines().find_map(|l| l.split_once("CapEff:")).map(|(_, v)| v.trim()).unwrap_or_else(|| panic!("{err}"))
}

#[test]
fn insecure_steps_need_the_entitlement_and_then_get_every_capability() {
    if !strata_testkit::require_root("insecure_steps_need_the_entitlement_and_then_get_every_capability") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let insecure = context(&registry, "insecure", "RUN --security=insecure grep CapEff /proc/self/status\n");
    let (ok, err) = build(&registry, &insecure, &[]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("RUN --security=insecure grep CapEff /proc/self/status: security.insecure is not allowed")
            && err.contains("--allow security.insecure"),
        "names the step and the flag: {err}"
    );
    let (ok, err) = build(&registry, &insecure, &["--allow", "security.insecure"]);
    assert!(ok, "{err}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let all = status.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap().trim();
    assert_eq!(cap_eff(&err), all, "every capability strata has: {err}");

    let sandbox = context(&registry, "sandbox", "RUN grep CapEff /proc/self/status\n");
    let (ok, err) = build(&registry, &sandbox, &["--allow", "security.insecure"]);
    assert!(ok, "{err}");
    assert_eq!(cap_eff(&err), "00000000a80425fb", "Docker's default set without --security=insecure: {err}");
}

/// The interface names in the `/proc/net/dev` a step printed (`#N 0.010     lo:  0 0 ...` lines).
fn interfaces(err: &str) -> Vec<String> {
    err.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|words| words.len() > 3 && words[0].starts_with('#') && words[3].parse::<u64>().is_ok())
        .filter_map(|words| words[2].strip_suffix(':').map(str::to_owned))
        .collect()
}

#[test]
fn network_none_leaves_only_loopback_per_step_or_for_the_build() {
    if !strata_testkit::require_root("network_none_leaves_only_loopback_per_step_or_for_the_build") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let none = context(&registry, "none", "RUN --network=none cat /proc/net/dev\n");
    let (ok, err) = build(&registry, &none, &[]);
    assert!(ok, "{err}");
    assert_eq!(interfaces(&err), ["lo"], "{err}");

    // Not the first step's command, which with --network none would be the same op, cached.
    let default = context(&registry, "default", "RUN cat /proc/net/dev && true\n");
    let (ok, err) = build(&registry, &default, &["--network", "none"]);
    assert!(ok, "{err}");
    assert_eq!(interfaces(&err), ["lo"], "--network none is the build's default: {err}");
    let (ok, err) = build(&registry, &default, &[]);
    assert!(ok, "{err}");
    assert!(interfaces(&err).len() > 1, "the build's network is part of the step's cache key: {err}");

    let host = context(&registry, "host", "RUN --network=host cat /proc/net/dev\n");
    let (ok, err) = build(&registry, &host, &["--network", "none"]);
    assert!(ok, "{err}");
    assert!(interfaces(&err).len() > 1, "a step's own --network wins: {err}");
}

/// A running `ssh-agent` holding a fresh ed25519 key; killed on drop.
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Self {
        strata_testkit::require_tool("ssh-agent");
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent").arg("-D").arg("-a").arg(&socket).stdout(Stdio::null()).spawn().unwrap();
        while !socket.exists() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let key = dir.path().join("id_ed25519");
        strata_testkit::run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key));
        strata_testkit::run(Command::new("ssh-add").arg(&key).env("SSH_AUTH_SOCK", &socket));
        Self { child, socket, _dir: dir }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_mounts_forward_the_agent_without_leaving_it_in_the_image() {
    if !strata_testkit::require_root("ssh_mounts_forward_the_agent_without_leaving_it_in_the_image") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let agent = Agent::start();
    let steps = "RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo agent-at-$SSH_AUTH_SOCK\n\
                 RUN --mount=type=ssh,id=other,target=/agent,required=true test -S /agent && echo other-agent\n";
    let ssh = context(&registry, "ssh", steps);
    let out = registry.dir.path().join("out");
    let socket = agent.socket.display().to_string();
    let flags = ["--ssh", &format!("default={socket}"), "--ssh", &format!("other={socket}"), "-o"];
    let (ok, err) = build(&registry, &ssh, &[&flags[..], &[&format!("type=local,dest={}", out.display())]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("agent-at-/run/buildkit/ssh_agent.0"), "SSH_AUTH_SOCK points at the socket: {err}");
    assert!(err.contains("other-agent"), "{err}");
    assert!(!out.join("run/buildkit").exists(), "the mount point is not in the image");
    assert!(!out.join("agent").exists(), "the mount point is not in the image");
    assert!(!err.contains(&socket), "the host socket's path is never printed: {err}");

    let (ok, err) = build(&registry, &ssh, &["--no-cache", "--ssh", &format!("default={socket}")]);
    assert!(!ok, "{err}");
    assert!(err.contains("no SSH agent with id \"other\" was given (--ssh other=SOCKET)"), "{err}");
}

#[test]
fn ssh_key_files_are_served_by_a_private_agent() {
    if !strata_testkit::require_root("ssh_key_files_are_served_by_a_private_agent") {
        return;
    }
    strata_testkit::require_tool("ssh-keygen");
    let registry = BusyboxRegistry::start();
    let key = registry.dir.path().join("deploy_key");
    strata_testkit::run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key));
    let ssh = context(&registry, "ssh-key", "RUN --mount=type=ssh,required=true test -S \"$SSH_AUTH_SOCK\"\n");
    let (ok, err) = build(&registry, &ssh, &["--ssh", &format!("default={}", key.display())]);
    assert!(ok, "{err}");
}
