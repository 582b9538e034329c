//! Shared by the CLI tests: the `strata` binary, and a registry holding busybox with a strata root to pull into.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::path::PathBuf;

use assert_cmd::Command;
use strata_testkit::{Registry, RegistryOptions, skopeo_push_busybox};

/// The `strata` binary under test.
pub fn strata() -> Command {
    Command::cargo_bin("strata").unwrap()
}

/// A plain-HTTP registry holding umoci's busybox at [`image`](Self::image), a `--config` saying it is plain
/// HTTP, and an empty `--root`.
pub struct BusyboxRegistry {
    /// The registry; stopped on drop.
    pub registry: Registry,
    /// `127.0.0.1:PORT/busybox:latest`.
    pub image: String,
    /// The OCI layout skopeo pushed.
    pub layout: PathBuf,
    /// Holds the layout, the config file and the root.
    pub dir: tempfile::TempDir,
}

impl BusyboxRegistry {
    /// Starts a registry without auth and pushes busybox to it with skopeo.
    pub fn start() -> Self {
        Self::start_with(RegistryOptions::default(), &[])
    }

    /// Starts a plain-HTTP registry with `options`' auth and pushes busybox with extra `skopeo copy` arguments.
    pub fn start_with(options: RegistryOptions, skopeo_args: &[&str]) -> Self {
        let registry = Registry::start_with(options);
        let dir = tempfile::tempdir().unwrap();
        let image = format!("{}/busybox:latest", registry.addr());
        let args = [&["--dest-tls-verify=false"], skopeo_args].concat();
        let layout = skopeo_push_busybox(dir.path(), &format!("docker://{image}"), &args);
        let config = format!("[registry.\"{}\"]\nhttp = true\n", registry.addr());
        std::fs::write(dir.path().join("strata.toml"), config).unwrap();
        Self { registry, image, layout, dir }
    }

    /// The strata root the tests pull into.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `strata --root ROOT --config CONFIG`.
    pub fn strata(&self) -> Command {
        let mut cmd = strata();
        cmd.arg("--root").arg(self.root()).arg("--config").arg(self.dir.path().join("strata.toml"));
        cmd
    }

    /// Runs `strata ARGS` against this registry and root; panics with its stderr if it fails; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.strata().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "strata {args:?} failed ({}):\n{}{}\nregistry log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.registry.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A real registry holding busybox as `library/busybox:latest`, and a `--config` file under `dir` that makes it
/// the plain-HTTP `docker.io` mirror.
pub fn busybox_mirror(dir: &std::path::Path) -> (strata_testkit::Registry, std::path::PathBuf) {
    let registry = strata_testkit::Registry::start();
    let addr = registry.addr();
    strata_testkit::skopeo_push_busybox(
        dir,
        &format!("docker://{addr}/library/busybox:latest"),
        &["--dest-tls-verify=false"],
    );
    let config = dir.join("strata.toml");
    let toml = format!("[registry.\"docker.io\"]\nmirrors = [\"{addr}\"]\n[registry.\"{addr}\"]\nhttp = true\n");
    std::fs::write(&config, toml).unwrap();
    (registry, config)
}
