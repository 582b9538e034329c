//! Fixtures shared by strata's tests: real parts, no mocks. A busybox root filesystem laid out like Docker
//! Hub's official image, OCI layouts of it made with umoci, a real distribution registry on 127.0.0.1, and a
//! loud skip for tests that need root.

mod busybox;
mod registry;

pub use busybox::{busybox_layout, busybox_rootfs, skopeo_push_busybox};
pub use registry::{Registry, RegistryAuth, RegistryOptions};

/// True when running as root. Otherwise prints a loud SKIP line naming the test, so a skip is never silent.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED {test}: needs root (overlay mounts, namespaces, device nodes); run the tests as root");
    }
    root
}

/// Panics with a clear message unless `tool` is on PATH; `.ci/run` installs every tool the tests use.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "{tool} is not installed; run .ci/run (it apt-installs every tool the tests need)");
}

/// Runs a command and panics with its stderr if it fails; returns its stdout.
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
