//! The same commands under strata's runtime and under runc, on the same busybox rootfs and the same settings,
//! must print the same and exit the same.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Busybox, runtime};
use strata_runtime::{DEFAULT_PATH, Network, ProcessSpec, RlimitResource, Rootfs};
use strata_testkit::{require_root, require_tool, run};

/// Docker's default capabilities, as runc's config names them.
const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// One command to compare: the script, the user as strata takes it, and as runc takes it (uid, gid, groups).
struct Case {
    script: &'static str,
    user: &'static str,
    /// uid, gid and additionalGids as containerd writes them: the primary gid leads (CVE-2023-25173).
    runc_user: (u32, u32, &'static [u32]),
    cwd: &'static str,
}

const CASES: &[Case] = &[
    Case { script: "id", user: "root", runc_user: (0, 0, &[0, 10]), cwd: "/" },
    Case { script: "id", user: "daemon", runc_user: (1, 1, &[1]), cwd: "/" },
    Case { script: "id", user: "1:1", runc_user: (1, 1, &[1]), cwd: "/" },
    Case { script: "id; echo $HOME", user: "4242", runc_user: (4242, 0, &[0]), cwd: "/" },
    Case { script: "pwd", user: "0", runc_user: (0, 0, &[0]), cwd: "/tmp" },
    Case { script: "env | sort", user: "daemon", runc_user: (1, 1, &[1]), cwd: "/var" },
    Case { script: "cat /proc/1/cmdline; echo; echo $$", user: "0", runc_user: (0, 0, &[0]), cwd: "/" },
    Case { script: "hostname", user: "0", runc_user: (0, 0, &[0]), cwd: "/" },
    Case { script: "ls /dev /dev/pts", user: "0", runc_user: (0, 0, &[0]), cwd: "/" },
    Case { script: "ulimit -n; ulimit -Hn", user: "0", runc_user: (0, 0, &[0]), cwd: "/" },
    Case { script: "grep -E '^(Cap|NoNewPrivs)' /proc/self/status", user: "0", runc_user: (0, 0, &[0]), cwd: "/" },
    Case { script: "grep -E '^(Cap|NoNewPrivs)' /proc/self/status", user: "daemon", runc_user: (1, 1, &[1]), cwd: "/" },
    Case {
        script: "cut -d: -f1 /proc/net/dev; cat /sys/class/net/lo/operstate",
        user: "0",
        runc_user: (0, 0, &[0]),
        cwd: "/",
    },
    Case {
        script: "cat /proc/kcore /proc/sys/kernel/hostname 2>&1 | head -c 40; echo x > /proc/sys/kernel/hostname",
        user: "0",
        runc_user: (0, 0, &[0]),
        cwd: "/",
    },
    Case { script: "exit 7", user: "0", runc_user: (0, 0, &[0]), cwd: "/" },
    Case { script: "kill -9 $$; echo survived", user: "0", runc_user: (0, 0, &[0]), cwd: "/" },
];

const HOSTNAME: &str = "compare";

#[test]
fn strata_and_runc_agree() {
    if !require_root("strata_and_runc_agree") {
        return;
    }
    require_tool("runc");
    let busybox = Busybox::new();
    let bundle = busybox.scratch("bundle");
    run(Command::new("runc").arg("spec").current_dir(&bundle));
    for (i, case) in CASES.iter().enumerate() {
        let spec = ProcessSpec::builder(Rootfs::Directory(busybox.rootfs()), ["sh", "-c", case.script])
            .env("PATH", DEFAULT_PATH)
            .env("TERM", "xterm")
            .user(case.user)
            .cwd(case.cwd)
            .hostname(HOSTNAME)
            .network(Network::None)
            .rlimit(RlimitResource::Nofile, 1024, 1024)
            .build()
            .unwrap();
        let ours = runtime().run_to_completion(&spec, None).unwrap();
        let theirs = runc_run(&bundle, &busybox.rootfs(), case, &format!("strata-compare-{}-{i}", std::process::id()));
        let ours = (ours.exit_code, String::from_utf8_lossy(&ours.stdout).into_owned());
        assert_eq!(ours, theirs, "{:?} as {} differs (left strata, right runc)", case.script, case.user);
    }
}

fn runc_run(bundle: &Path, rootfs: &Path, case: &Case, id: &str) -> (i32, String) {
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["root"] = serde_json::json!({ "path": rootfs, "readonly": false });
    config["hostname"] = HOSTNAME.into();
    let process = &mut config["process"];
    process["terminal"] = false.into();
    process["args"] = serde_json::json!(["sh", "-c", case.script]);
    process["cwd"] = case.cwd.into();
    let (uid, gid, groups) = case.runc_user;
    process["user"] = serde_json::json!({ "uid": uid, "gid": gid, "additionalGids": groups });
    process["capabilities"] = serde_json::json!({
        "bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS,
    });
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let out = Command::new("runc").args(["run", "--bundle"]).arg(bundle).arg(id).output().unwrap();
    let _ = Command::new("runc").args(["delete", "--force", id]).output();
    assert!(out.status.code().is_some(), "runc was killed: {out:?}");
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}
