//! Shared by the runtime's integration tests: a busybox rootfs and the runtime with the crate's own init.

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};

use strata_runtime::{Completed, ProcessSpec, ProcessSpecBuilder, Rootfs, Runtime};

/// The runtime, re-executing the crate's `strata-init` binary as the container init.
pub fn runtime() -> Runtime {
    Runtime::with_init_program(env!("CARGO_BIN_EXE_strata-init"))
}

/// A busybox root filesystem in a fresh directory that any user may read.
pub struct Busybox {
    dir: tempfile::TempDir,
}

impl Busybox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        strata_testkit::busybox_rootfs(&dir.path().join("rootfs"));
        Self { dir }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// A scratch directory next to the rootfs, for overlay upper and work dirs and bind sources.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// A spec running `sh -c script` over the rootfs directory.
    pub fn sh(&self, script: &str) -> ProcessSpecBuilder {
        ProcessSpec::builder(Rootfs::Directory(self.rootfs()), ["sh", "-c", script])
    }
}

/// Builds and runs the spec to completion; panics on runtime errors.
pub fn run(spec: ProcessSpecBuilder) -> Completed {
    let spec = spec.build().unwrap();
    runtime().run_to_completion(&spec, None).unwrap_or_else(|e| panic!("running {:?}: {e}", spec.args()))
}

/// Stdout of a run that must succeed, trimmed.
pub fn stdout_of(spec: ProcessSpecBuilder) -> String {
    let done = run(spec);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.exit_code, 0, "stderr: {stderr}");
    String::from_utf8_lossy(&done.stdout).trim().to_owned()
}

/// Every path under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(base).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
