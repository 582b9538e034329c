//! The image subcommands end to end against a real registry: pull (which unpacks), images, inspect, run, tag,
//! push, rmi, prune, du and login, with skopeo on the other side.

mod common;

use std::process::Command;

use common::BusyboxRegistry;
use strata_testkit::{RegistryAuth, RegistryOptions, require_root, require_tool, run};

/// Every pull unpacks layers (chown, device nodes, overlay), so these tests need root.
#[test]
fn pulled_images_list_inspect_run_tag_push_and_go_with_rmi_and_prune() {
    if !require_root("pulled_images_list_inspect_run_tag_push_and_go_with_rmi_and_prune") {
        return;
    }
    let busybox = BusyboxRegistry::start();
    let image = busybox.image.as_str();
    let pulled = busybox.ok(&["pull", image]);
    let manifest = pulled.trim().strip_prefix(&format!("{image}: ")).unwrap_or_else(|| panic!("{pulled}")).to_owned();
    assert_eq!(busybox.ok(&["images", "-q"]), format!("{image}\n"));
    assert!(busybox.ok(&["images"]).contains(&manifest));

    let inspect: serde_json::Value = serde_json::from_str(&busybox.ok(&["inspect", image])).unwrap();
    assert_eq!(inspect["name"], image);
    assert_eq!(inspect["digest"], manifest.as_str());
    assert_eq!(inspect["manifest"]["layers"].as_array().unwrap().len(), 1);
    assert_eq!(inspect["config"]["config"]["Cmd"], serde_json::json!(["sh"]));
    // The image's one layer is unpacked into a committed snapshot named by its chain ID (here its diffID).
    let chain_id = inspect["config"]["rootfs"]["diff_ids"][0].as_str().unwrap().to_owned();
    let du = busybox.ok(&["du", "--verbose"]);
    assert!(du.contains(&chain_id) && du.contains("Snapshots:\t1 ("), "{du}");

    assert_eq!(busybox.ok(&["run", "--rm", image, "echo", "hi"]), "hi\n");

    let copy = format!("{}/copy:v1", busybox.registry.addr());
    busybox.ok(&["tag", image, &copy]);
    busybox.ok(&["push", &copy]);
    require_tool("skopeo");
    let seen = run(Command::new("skopeo").args(["inspect", "--tls-verify=false"]).arg(format!("docker://{copy}")));
    let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen["Digest"], manifest.as_str());

    // Names keep the snapshot through prune; the copy's name keeps it after the original's is gone.
    assert!(!busybox.ok(&["prune", "--all"]).contains(&chain_id));
    busybox.ok(&["rmi", image]);
    assert_eq!(busybox.ok(&["images", "-q"]), format!("{copy}\n"));
    assert!(!busybox.ok(&["prune", "--all"]).contains(&chain_id));
    busybox.ok(&["rmi", &copy]);
    // Prune spares blobs younger than its grace period (a pull may not have named them yet): age them past it.
    let content = busybox.root().join("content");
    run(Command::new("find").arg(&content).args(["-type", "f", "-exec", "touch", "-d", "1 hour ago", "{}", "+"]));
    let pruned = busybox.ok(&["prune", "--all"]);
    assert!(
        pruned.contains(&format!("snapshot\t{chain_id}")) && pruned.contains(&format!("blob\t{manifest}")),
        "{pruned}"
    );
    let du = busybox.ok(&["du"]);
    assert!(
        du.contains("Snapshots:\t0 (0B)") && du.contains("Blobs:\t\t0 (0B)") && du.contains("Total:\t\t0B"),
        "{du}"
    );
    assert!(busybox.ok(&["images", "-q"]).is_empty());
}

#[test]
fn login_checks_the_password_and_the_saved_credentials_serve_pull() {
    if !require_root("login_checks_the_password_and_the_saved_credentials_serve_pull") {
        return;
    }
    require_tool("htpasswd");
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, run(Command::new("htpasswd").args(["-Bbn", "alice", "s3cret"]))).unwrap();
    let options = RegistryOptions { tls: None, auth: RegistryAuth::Htpasswd(htpasswd) };
    let busybox = BusyboxRegistry::start_with(options, &["--dest-creds", "alice:s3cret"]);
    let (addr, image) = (busybox.registry.addr(), busybox.image.as_str());
    let docker_config = dir.path().join("docker");
    let strata = |args: &[&str]| busybox.strata().env("DOCKER_CONFIG", &docker_config).args(args).output().unwrap();

    let denied = strata(&["pull", image]);
    assert!(!denied.status.success(), "pull without credentials is refused");
    let wrong = strata(&["login", "-u", "alice", "-p", "wrong", &addr]);
    assert!(!wrong.status.success() && !docker_config.join("config.json").exists(), "a wrong password is not saved");
    let login = strata(&["login", "-u", "alice", "-p", "s3cret", &addr]);
    assert_eq!(
        String::from_utf8_lossy(&login.stdout),
        "Login Succeeded\n",
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let pulled = strata(&["pull", image]);
    assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
}

#[test]
fn concurrent_pulls_into_one_root_unpack_each_layer_once_with_the_native_snapshotter() {
    if !require_root("concurrent_pulls_into_one_root_unpack_each_layer_once_with_the_native_snapshotter") {
        return;
    }
    let busybox = BusyboxRegistry::start();
    let image = busybox.image.as_str();
    // Two `strata` processes at once, each unpacking the same layer.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| busybox.ok(&["--snapshotter", "native", "pull", image]));
        }
    });
    let du = busybox.ok(&["--snapshotter", "native", "du"]);
    assert!(du.contains("Snapshots:\t1 ("), "{du}");
    assert_eq!(busybox.ok(&["--snapshotter", "native", "run", image, "ls", "/bin/busybox"]), "/bin/busybox\n");
}

#[test]
fn prune_all_removes_idle_cache_mounts_and_context_records() {
    if !require_root("prune_all_removes_idle_cache_mounts_and_context_records") {
        return;
    }
    let busybox = BusyboxRegistry::start();
    let context = busybox.dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("a.txt"), "a").unwrap();
    let dockerfile = format!(
        "FROM {}\nCOPY a.txt /\nRUN --mount=type=cache,target=/c echo kept > /c/file && cat /a.txt\n",
        busybox.image
    );
    std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
    busybox.ok(&["build", "--progress", "quiet", context.to_str().unwrap()]);
    let root = busybox.root();
    assert!(root.join("cache-mounts").read_dir().unwrap().next().is_some(), "the build left its cache mount");
    assert!(root.join("context-hashes").read_dir().unwrap().next().is_some(), "and its context record");
    let pruned = busybox.ok(&["prune", "--all"]);
    assert!(pruned.contains("cache-mount\t") && pruned.contains("context-record\t"), "{pruned}");
    assert!(root.join("cache-mounts").read_dir().unwrap().next().is_none(), "{pruned}");
    assert!(root.join("context-hashes").read_dir().unwrap().next().is_none(), "{pruned}");
    busybox.ok(&["build", "--progress", "quiet", context.to_str().unwrap()]);
}
