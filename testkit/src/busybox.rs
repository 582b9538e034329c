//! A busybox base image like Docker Hub's official one, made from Debian's busybox-static.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{require_tool, run};

// Buildroot's, as in Docker Hub's busybox; the demo script lays out the same files.
const PASSWD: &str = include_str!("../../testdata/examples/demo/etc/passwd");
const GROUP: &str = include_str!("../../testdata/examples/demo/etc/group");

// Debian's busybox-static lacks the adduser applet; this covers `adduser -D NAME` as the official image does.
const ADDUSER: &str = r#"#!/bin/sh
# adduser [-D] NAME : add a user and its own group with the first free id >= 1000
set -e
while [ $# -gt 1 ]; do shift; done
name="$1"
[ -n "$name" ] || { echo "usage: adduser -D NAME" >&2; exit 1; }
grep -q "^$name:" /etc/passwd && { echo "adduser: user '$name' in use" >&2; exit 1; }
id=1000
while cut -d: -f3 /etc/passwd /etc/group | grep -qx "$id"; do id=$((id + 1)); done
echo "$name:x:$id:" >> /etc/group
echo "$name:x:$id:$id:Linux User,,,:/home/$name:/bin/sh" >> /etc/passwd
echo "$name:!:0:0:99999:7:::" >> /etc/shadow
mkdir -p "/home/$name"
chown "$id:$id" "/home/$name"
chmod 0755 "/home/$name"
"#;

/// Lays out a busybox root filesystem at `root`: every applet a hard link to `/bin/busybox`, buildroot's
/// passwd and group (root in wheel, daemon = 1, group nobody), and an `adduser` script.
pub fn busybox_rootfs(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.is_file(), "/bin/busybox missing: apt-get install busybox-static (.ci/run does)");
    for dir in ["bin", "etc", "root", "tmp", "proc", "sys", "dev", "home", "usr/sbin", "var/spool/mail", "var/www"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    let target = root.join("bin/busybox");
    fs::copy(busybox, &target).unwrap();
    // The host binary, not the fresh copy: a test thread forking meanwhile may still hold the copy open for
    // writing, and exec of it fails with ETXTBSY.
    let list = run(Command::new(busybox).arg("--list"));
    for applet in list.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        let link = root.join("bin").join(applet);
        let _ = fs::remove_file(&link);
        fs::hard_link(&target, &link).unwrap();
    }
    fs::write(root.join("etc/passwd"), PASSWD).unwrap();
    fs::write(root.join("etc/group"), GROUP).unwrap();
    fs::write(root.join("etc/shadow"), "root::10933:0:99999:7:::\n").unwrap();
    fs::set_permissions(root.join("etc/shadow"), fs::Permissions::from_mode(0o600)).unwrap();
    let adduser = root.join("bin/adduser");
    let _ = fs::remove_file(&adduser);
    fs::write(&adduser, ADDUSER).unwrap();
    fs::set_permissions(&adduser, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Builds a one-layer OCI image layout of the busybox root filesystem with umoci, tagged `latest`, at
/// `dir/busybox`, and returns the layout's path. A third-party tool makes it, so strata's readers are tested
/// against layers strata did not write.
pub fn busybox_layout(dir: &Path) -> PathBuf {
    require_tool("umoci");
    let layout = dir.join("busybox");
    let image = format!("{}:latest", layout.display());
    let bundle = tempfile::tempdir_in(dir).unwrap();
    run(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci").args(["unpack", "--image", &image]).arg(bundle.path().join("b")));
    let rootfs = bundle.path().join("b/rootfs");
    fs::remove_dir_all(&rootfs).unwrap();
    busybox_rootfs(&rootfs);
    run(Command::new("umoci").args(["repack", "--image", &image]).arg(bundle.path().join("b")));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--os",
        "linux",
        "--architecture",
        host_arch(),
        "--config.env",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--config.cmd",
        "sh",
    ]));
    run(Command::new("umoci").args(["gc", "--layout"]).arg(&layout));
    layout
}

/// Pushes umoci's busybox layout to `dest` (`docker://...`) with skopeo; returns the layout's path.
pub fn skopeo_push_busybox(dir: &Path, dest: &str, extra: &[&str]) -> PathBuf {
    require_tool("skopeo");
    let layout = busybox_layout(dir);
    let source = format!("oci:{}:latest", layout.display());
    run(Command::new("skopeo").args(["copy", "--quiet"]).args(extra).arg(source).arg(dest));
    layout
}

/// The OCI architecture name of this machine.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_has_the_official_layout() {
        let dir = tempfile::tempdir().unwrap();
        busybox_rootfs(dir.path());
        use std::os::unix::fs::MetadataExt;
        let sh = fs::metadata(dir.path().join("bin/sh")).unwrap();
        assert_eq!(sh.ino(), fs::metadata(dir.path().join("bin/busybox")).unwrap().ino());
        assert!(fs::read_to_string(dir.path().join("etc/group")).unwrap().contains("wheel:x:10:root"));
        assert!(dir.path().join("bin/awk").is_file());
    }

    #[test]
    fn umoci_layout_has_one_layer() {
        let dir = tempfile::tempdir().unwrap();
        let layout = busybox_layout(dir.path());
        let index = fs::read_to_string(layout.join("index.json")).unwrap();
        assert!(index.contains("\"org.opencontainers.image.ref.name\":\"latest\""), "{index}");
    }
}
