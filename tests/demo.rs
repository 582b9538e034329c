//! The README's first command: `testdata/examples/demo/run-demo.sh` builds the demo on a local busybox base
//! and runs it.

use std::path::Path;
use std::process::Command;

#[test]
fn run_demo_script_builds_and_runs_the_greeting() {
    if !strata_testkit::require_root("run_demo_script_builds_and_runs_the_greeting") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/examples/demo/run-demo.sh");
    let out = strata_testkit::run(
        Command::new(script).env("STRATA", env!("CARGO_BIN_EXE_strata")).env("STRATA_ROOT", root.path()),
    );
    assert_eq!(out, "Hello from strata: this image was built by strata in three stages on a busybox base.\n");
}
