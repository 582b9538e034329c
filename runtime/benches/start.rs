//! Container start-to-exit time of busybox `true` through the runtime API (no CLI), over a rootfs directory and
//! over an overlay, next to `runc run` of the same rootfs. Needs root; prints a SKIP line otherwise.

use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use strata_runtime::{Mount, ProcessSpec, Rootfs, Runtime};
use strata_testkit::{busybox_rootfs, require_root, run};

fn start(c: &mut Criterion) {
    if !require_root("runtime start bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    busybox_rootfs(&rootfs);
    let runtime = Runtime::with_init_program(env!("CARGO_BIN_EXE_strata-init"));
    let mut group = c.benchmark_group("start true");

    let on_directory = ProcessSpec::builder(Rootfs::Directory(rootfs.clone()), ["true"]).build().unwrap();
    group.bench_function("strata, directory rootfs", |b| {
        b.iter(|| assert_eq!(runtime.run_to_completion(&on_directory, None).unwrap().exit_code, 0))
    });

    let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let overlay = Mount::overlay(&[rootfs.to_path_buf()], Some((&upper, &work)));
    let on_overlay = ProcessSpec::builder(Rootfs::Mounts(vec![overlay]), ["true"]).build().unwrap();
    group.bench_function("strata, overlay rootfs", |b| {
        b.iter(|| assert_eq!(runtime.run_to_completion(&on_overlay, None).unwrap().exit_code, 0))
    });

    if Command::new("runc").arg("--version").output().is_ok() {
        runc_spec(&bundle);
        group.bench_function("runc run, directory rootfs", |b| {
            b.iter(|| run(Command::new("runc").args(["run", "--bundle"]).arg(&bundle).arg("strata-bench")))
        });
    }
    group.finish();
}

/// `runc spec` with no terminal and `true` as the command.
fn runc_spec(bundle: &Path) {
    run(Command::new("runc").arg("spec").current_dir(bundle));
    let config = bundle.join("config.json");
    let spec = std::fs::read_to_string(&config).unwrap();
    let spec = spec.replace("\"terminal\": true", "\"terminal\": false").replace("\"sh\"\n", "\"true\"\n");
    std::fs::write(&config, spec).unwrap();
}

criterion_group!(benches, start);
criterion_main!(benches);
