//! Real builds over a busybox base: RUN, COPY with .dockerignore, multi-stage, caching, failures and the OCI
//! export. The binary is its own container init (`harness = false`), so every test is listed in `main`.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_exporter::cache::{CacheMode, ImportedCache, cache_image};
use strata_exporter::{ExportOptions, assemble, write_docker_tar, write_local, write_oci_layout, write_oci_tar};
use strata_frontend::lower::{ImageResolver, LowerOptions, ResolvedImage, lower};
use strata_frontend::parser::parse;
use strata_llb::patterns::read_ignore_file;
use strata_llb::{Definition, ImageConfig, NodeId, Platform};
use strata_runtime::Runtime;
use strata_snapshotter::{ContentStore, Digest, MetadataStore, MountGuard, Snapshotter, SnapshotterKind, mount_all};
use strata_solver::{Progress, Solved, Solver, SolverBuilder, StoreImageSource};

const BUSYBOX: &str = "docker.io/library/busybox:latest";

/// `(name, function)` pairs for the hand-written test runner.
macro_rules! tests {
    ($($test:ident),* $(,)?) => { &[$((stringify!($test), $test as fn())),*] };
}

fn main() {
    strata_runtime::run_init_if_requested();
    if !strata_testkit::require_root("solver build tests") {
        return;
    }
    let tests: &[(&str, fn())] = tests![
        run_and_copy_land_in_the_result_and_rebuilds_are_cached,
        changing_a_context_file_reruns_only_dependent_steps,
        multi_stage_copy_from,
        the_native_snapshotter_builds_and_exports_the_same,
        the_oci_export_is_read_by_skopeo_and_umoci,
        a_failing_run_is_reported_as_buildkit_words_it_and_not_cached,
        independent_stages_run_at_the_same_time,
        a_step_cached_over_a_rebuilt_input_still_exports_its_own_layer,
        a_cancelled_build_records_nothing_and_leaves_no_snapshot,
        cache_mounts_persist_and_from_seeds_its_own_cache,
        the_context_hash_record_outlives_the_solver,
        a_cache_exported_from_one_store_rebuilds_nothing_in_another,
    ];
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut passed = 0;
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        eprintln!("test {name} ...");
        // A failing test panics, which ends the process with a failure status.
        test();
        eprintln!("test {name} ... ok");
        passed += 1;
    }
    // The plain closing line test-result readers look for, as libtest's harness would print it.
    println!("build: {passed} passed, 0 failed");
}

/// Counts started RUN steps and keeps their output.
#[derive(Default)]
struct Recorder {
    lines: std::sync::Mutex<Vec<String>>,
    cached: AtomicUsize,
}

impl Progress for Recorder {
    fn output(&self, _node: NodeId, _stream: strata_solver::Stream, line: &str) {
        self.lines.lock().unwrap().push(line.to_owned());
    }
    fn cached(&self, _node: NodeId, _description: &str) {
        self.cached.fetch_add(1, Ordering::Relaxed);
    }
}

/// A store under a temp dir holding the busybox image (made by umoci) under its Docker Hub name.
struct Store {
    dir: tempfile::TempDir,
    content: Arc<ContentStore>,
    metadata: Arc<MetadataStore>,
    snapshotter: Arc<dyn Snapshotter>,
}

impl Store {
    fn new() -> Self {
        Self::with(SnapshotterKind::Overlay)
    }

    fn with(kind: SnapshotterKind) -> Self {
        let layouts = tempfile::tempdir().unwrap();
        Self::from_layout(kind, &strata_testkit::busybox_layout(layouts.path()))
    }

    /// A store holding the busybox image of `layout` (umoci's images differ from run to run).
    fn from_layout(kind: SnapshotterKind, layout: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let content = Arc::new(ContentStore::open(dir.path().join("content")).unwrap());
        let metadata = Arc::new(MetadataStore::open(dir.path()).unwrap());
        let snapshotter: Arc<dyn Snapshotter> =
            strata_snapshotter::snapshot::open(dir.path(), metadata.clone(), kind).unwrap().into();
        let index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        for blob in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let mut writer = content.writer().unwrap();
            std::io::copy(&mut fs::File::open(blob.unwrap().path()).unwrap(), &mut writer).unwrap();
            writer.commit(None).unwrap();
        }
        let manifest: Digest = index["manifests"][0]["digest"].as_str().unwrap().parse().unwrap();
        metadata.put_image(BUSYBOX, &manifest).unwrap();
        Self { dir, content, metadata, snapshotter }
    }

    fn solver(&self, context: &Path, progress: Arc<Recorder>) -> Solver {
        self.builder(context, progress).build()
    }

    fn builder(&self, context: &Path, progress: Arc<Recorder>) -> SolverBuilder {
        let images =
            Arc::new(StoreImageSource::new(self.content.clone(), self.metadata.clone(), self.snapshotter.clone()));
        Solver::builder(self.dir.path(), self.content.clone(), self.metadata.clone(), self.snapshotter.clone(), images)
            .runtime(Runtime::with_init_program(std::env::current_exe().unwrap()))
            .context("context", context)
            .progress(progress)
    }

    /// Mounts a read-only view of `snapshot`.
    fn read(&self, snapshot: &str) -> (tempfile::TempDir, MountGuard) {
        let view = format!("test-view-{snapshot}-{}", rand_suffix());
        let mounts = self.snapshotter.view(&view, Some(snapshot)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let guard = mount_all(&mounts, dir.path()).unwrap();
        (dir, guard)
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Maps `busybox` to the store's image, as the conformance README asks.
struct Busybox;

impl ImageResolver for Busybox {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<ResolvedImage, String> {
        if !matches!(reference, "busybox" | "busybox:latest" | BUSYBOX) {
            return Err(format!("{reference}: not found"));
        }
        let config =
            ImageConfig { env: Some(vec![format!("PATH={}", strata_runtime::DEFAULT_PATH)]), ..Default::default() };
        Ok(ResolvedImage { reference: BUSYBOX.into(), config })
    }
}

/// Writes `files` (path -> contents) under a new context directory.
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

fn lowered(dockerfile: &str, context: &Path) -> Definition {
    let ignore = fs::read_to_string(context.join(".dockerignore")).unwrap_or_default();
    let options = LowerOptions::new().ignore_patterns(read_ignore_file(&ignore));
    lower(&parse(dockerfile, "Dockerfile").unwrap(), &options, &Busybox).unwrap()
}

fn solve(solver: &Solver, definition: &Definition) -> strata_solver::Result<Solved> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(solver.solve(definition))
}

fn root_of(solved: &Solved, definition: &Definition) -> String {
    solved.snapshot(definition.root.unwrap()).unwrap().to_owned()
}

fn read(dir: &Path, path: &str) -> String {
    fs::read_to_string(dir.join(path)).unwrap_or_else(|e| format!("<{path}: {e}>"))
}

fn run_and_copy_land_in_the_result_and_rebuilds_are_cached() {
    let store = Store::new();
    let ctx = context(&[("a.txt", "A"), ("sub/x", "X"), ("debug.log", "L"), (".dockerignore", "*.log\n")]);
    let dockerfile = "FROM busybox\nRUN echo hello > /greeting && echo ran\nCOPY a.txt /data/\nCOPY . /ctx\n";
    let definition = lowered(dockerfile, ctx.path());
    let progress = Arc::new(Recorder::default());
    let solver = store.solver(ctx.path(), progress.clone());
    let solved = solve(&solver, &definition).unwrap();
    assert_eq!(solved.executed, 1);
    assert!(progress.lines.lock().unwrap().contains(&"ran".to_owned()), "RUN output streams to progress");
    let (dir, _guard) = store.read(&root_of(&solved, &definition));
    assert_eq!(read(dir.path(), "greeting"), "hello\n");
    assert_eq!(read(dir.path(), "data/a.txt"), "A");
    assert_eq!(read(dir.path(), "ctx/sub/x"), "X");
    assert!(!dir.path().join("ctx/debug.log").exists(), ".dockerignore applies");
    assert!(dir.path().join("bin/busybox").exists(), "the base is below");
    let again = solve(&solver, &definition).unwrap();
    assert_eq!(again.executed, 0, "a second build runs nothing");
    assert!(again.results.values().filter(|r| !r.cached).all(|r| r.key.starts_with("blake3:")));
    assert_eq!(root_of(&again, &definition), root_of(&solved, &definition));
}

fn changing_a_context_file_reruns_only_dependent_steps() {
    let store = Store::new();
    let ctx = context(&[("a.txt", "A"), ("b.txt", "B")]);
    let dockerfile = "FROM busybox\nCOPY a.txt /a\nRUN cat /a > /a.copy\nCOPY b.txt /b\nRUN cat /b > /b.copy\n";
    let definition = lowered(dockerfile, ctx.path());
    let solver = store.solver(ctx.path(), Arc::new(Recorder::default()));
    assert_eq!(solve(&solver, &definition).unwrap().executed, 2);
    fs::write(ctx.path().join("b.txt"), "B2").unwrap();
    let solved = solve(&solver, &definition).unwrap();
    assert_eq!(solved.executed, 1, "only the RUN after COPY b.txt runs again");
    let (dir, _guard) = store.read(&root_of(&solved, &definition));
    assert_eq!(read(dir.path(), "a.copy"), "A");
    assert_eq!(read(dir.path(), "b.copy"), "B2");
}

fn the_context_hash_record_outlives_the_solver() {
    use std::os::unix::fs::MetadataExt;
    let store = Store::new();
    let ctx = context(&[("a.txt", "A"), ("sub/x", "X")]);
    // Files changed within a second of being hashed are not trusted by the next solve.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let definition = lowered("FROM busybox\nCOPY a.txt /a\nCOPY sub /sub\n", ctx.path());
    let first = solve(&store.solver(ctx.path(), Arc::new(Recorder::default())), &definition).unwrap();
    let records: Vec<_> =
        fs::read_dir(store.dir.path().join("context-hashes")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(records.len(), 1, "one record for the one context directory");
    let written = fs::metadata(&records[0]).unwrap().ino();
    let again = solve(&store.solver(ctx.path(), Arc::new(Recorder::default())), &definition).unwrap();
    assert!(again.results[&definition.root.unwrap()].cached);
    assert_eq!(root_of(&again, &definition), root_of(&first, &definition));
    assert_eq!(fs::metadata(&records[0]).unwrap().ino(), written, "a new solver read no file, so saved nothing");
    fs::write(ctx.path().join("a.txt"), "B").unwrap();
    let changed = solve(&store.solver(ctx.path(), Arc::new(Recorder::default())), &definition).unwrap();
    assert_ne!(fs::metadata(&records[0]).unwrap().ino(), written, "the changed file was read and remembered");
    let (dir, _guard) = store.read(&root_of(&changed, &definition));
    assert_eq!(read(dir.path(), "a"), "B");
    assert_eq!(read(dir.path(), "sub/x"), "X");
}

fn multi_stage_copy_from() {
    let store = Store::new();
    let ctx = context(&[]);
    let dockerfile = "FROM busybox AS build\nRUN mkdir /out && echo built > /out/artifact\n\
                      FROM busybox\nCOPY --from=build /out /final\nRUN cat /final/artifact\n";
    let definition = lowered(dockerfile, ctx.path());
    let progress = Arc::new(Recorder::default());
    let solved = solve(&store.solver(ctx.path(), progress.clone()), &definition).unwrap();
    let (dir, _guard) = store.read(&root_of(&solved, &definition));
    assert_eq!(read(dir.path(), "final/artifact"), "built\n");
    assert!(progress.lines.lock().unwrap().contains(&"built".to_owned()));
}

fn cache_mounts_persist_and_from_seeds_its_own_cache() {
    let store = Store::new();
    let ctx = context(&[]);
    let dockerfile = "FROM busybox AS seed\nRUN mkdir -p /s/sub && echo seeded > /s/sub/file\n\
                      FROM busybox\n\
                      RUN --mount=type=cache,id=c,target=/c echo $(ls /c | wc -l) >> /c/count; echo bare $(cat /c/count)\n\
                      RUN --mount=type=cache,id=c,target=/c,from=seed,source=/s cat /c/sub/file; echo >> /c/sub/file\n";
    let progress = Arc::new(Recorder::default());
    let solver = store.solver(ctx.path(), progress.clone());
    solve(&solver, &lowered(dockerfile, ctx.path())).unwrap();
    // Changed commands rerun over the caches the first build left.
    let again = dockerfile.replace("echo bare", "echo bare again").replace("cat /c/sub/file", "cat /c/sub/file; true");
    solve(&solver, &lowered(&again, ctx.path())).unwrap();
    let lines = progress.lines.lock().unwrap();
    assert!(lines.contains(&"bare 0".to_owned()), "{lines:?}");
    assert!(lines.contains(&"bare again 0 1".to_owned()), "the bare cache persists, unseeded: {lines:?}");
    let seeded: Vec<_> = lines.iter().filter(|l| l.starts_with("seeded")).collect();
    assert_eq!(seeded.len(), 2, "the seeded cache starts from the seed's source path: {lines:?}");
    assert!(lines.iter().filter(|l| l.is_empty()).count() >= 1, "and keeps what the first run appended: {lines:?}");
}

fn a_failing_run_is_reported_as_buildkit_words_it_and_not_cached() {
    let store = Store::new();
    let ctx = context(&[]);
    let definition = lowered("FROM busybox\nRUN touch /x && exit 3\n", ctx.path());
    let solver = store.solver(ctx.path(), Arc::new(Recorder::default()));
    let err = solve(&solver, &definition).unwrap_err().to_string();
    assert_eq!(err, "process \"/bin/sh -c touch /x && exit 3\" did not complete successfully: exit code: 3");
    assert!(store.metadata.caches().unwrap().is_empty(), "a failed step records nothing");
    let active: Vec<_> =
        store.metadata.snapshots().unwrap().into_iter().filter(|s| s.key.starts_with("active")).collect();
    assert!(active.is_empty(), "the failed step's snapshot is removed: {active:?}");
}

fn the_oci_export_is_read_by_skopeo_and_umoci() {
    strata_testkit::require_tool("skopeo");
    let store = Store::new();
    let ctx = context(&[("app.txt", "app")]);
    let dockerfile = "FROM busybox\nRUN echo built > /built && rm /bin/ls\nENV MODE=test\nCOPY app.txt /app/\nCMD [\"cat\", \"/built\"]\n";
    let definition = lowered(dockerfile, ctx.path());
    let solver = store.solver(ctx.path(), Arc::new(Recorder::default()));
    let solved = solve(&solver, &definition).unwrap();
    let options = ExportOptions::new().source_date_epoch(Some(1_700_000_000));
    let image = assemble(&solver, &definition, &solved, &options).unwrap();
    assert_eq!(image.layers.len(), 3, "busybox's layer, RUN's and COPY's");
    let again = assemble(&solver, &definition, &solved, &options).unwrap();
    assert_eq!(again.manifest.digest(), image.manifest.digest(), "exports are reproducible");
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    write_oci_layout(&store.content, &image, Some("example.com/app:v1"), &layout).unwrap();
    let inspected = strata_testkit::run(
        std::process::Command::new("skopeo").arg("inspect").arg(format!("oci:{}:v1", layout.display())),
    );
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 3, "{inspected}");
    assert!(inspected["Env"].as_array().unwrap().iter().any(|e| e == "MODE=test"), "{inspected}");
    assert_eq!(inspected["Created"], "2023-11-14T22:13:20Z");
    let bundle = out.path().join("bundle");
    strata_testkit::run(
        std::process::Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:v1", layout.display()))
            .arg(&bundle),
    );
    assert_eq!(read(&bundle.join("rootfs"), "built"), "built\n");
    assert_eq!(read(&bundle.join("rootfs"), "app/app.txt"), "app");
    assert!(!bundle.join("rootfs/bin/ls").exists(), "the RUN's deletion is a whiteout");
    let tarball = out.path().join("image.tar");
    write_oci_tar(&store.content, &image, None, &tarball).unwrap();
    strata_testkit::run(
        std::process::Command::new("skopeo").arg("inspect").arg(format!("oci-archive:{}", tarball.display())),
    );
    let docker = out.path().join("docker.tar");
    write_docker_tar(&store.content, &image, Some("example.com/app:v1"), &docker).unwrap();
    let inspected = strata_testkit::run(
        std::process::Command::new("skopeo").arg("inspect").arg(format!("docker-archive:{}", docker.display())),
    );
    assert!(inspected.contains("MODE=test"), "{inspected}");
    let local = out.path().join("local");
    write_local(&store.content, &image, &local).unwrap();
    assert_eq!(read(&local, "built"), "built\n");
    assert!(local.join("bin/busybox").exists() && !local.join("bin/ls").exists());
}

fn independent_stages_run_at_the_same_time() {
    let store = Store::new();
    let ctx = context(&[]);
    let dockerfile = "FROM busybox AS a\nRUN sleep 2 && echo a > /a\nFROM busybox AS b\nRUN sleep 2 && echo b > /b\n\
                      FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n";
    let definition = lowered(dockerfile, ctx.path());
    let solver = store.solver(ctx.path(), Arc::new(Recorder::default()));
    let started = std::time::Instant::now();
    let solved = solve(&solver, &definition).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(solved.executed, 2);
    assert!(elapsed < std::time::Duration::from_millis(3500), "the two 2 s RUNs ran one after the other: {elapsed:?}");
    let (dir, _guard) = store.read(&root_of(&solved, &definition));
    assert_eq!(read(dir.path(), "a") + &read(dir.path(), "b"), "a\nb\n");
}

fn a_cancelled_build_records_nothing_and_leaves_no_snapshot() {
    let store = Store::new();
    let ctx = context(&[]);
    let definition = lowered("FROM busybox\nRUN touch /started && sleep 60\n", ctx.path());
    let solver = store.solver(ctx.path(), Arc::new(Recorder::default()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let started = std::time::Instant::now();
    let limit = std::time::Duration::from_secs(2);
    let timed_out = runtime.block_on(async { tokio::time::timeout(limit, solver.solve(&definition)).await });
    assert!(timed_out.is_err(), "the build was cancelled");
    drop(runtime);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "cancelling kills the RUN");
    assert!(store.metadata.caches().unwrap().is_empty(), "a cancelled step records nothing");
    let active: Vec<_> =
        store.metadata.snapshots().unwrap().into_iter().filter(|s| s.key.starts_with("active")).collect();
    assert!(active.is_empty(), "the cancelled step's snapshot is removed: {active:?}");
}

fn a_step_cached_over_a_rebuilt_input_still_exports_its_own_layer() {
    let store = Store::new();
    let ctx = context(&[]);
    let dockerfile = "FROM busybox AS a\nRUN echo a > /a\nFROM a\nRUN echo b > /b\n";
    let solver = store.solver(ctx.path(), Arc::new(Recorder::default()));
    solve(&solver, &lowered(dockerfile, ctx.path())).unwrap();
    // Stage a runs again into a new snapshot; the last RUN is a cache hit made on the old one.
    let options = LowerOptions::new().no_cache_filter(vec!["a".into()]);
    let definition = lower(&parse(dockerfile, "Dockerfile").unwrap(), &options, &Busybox).unwrap();
    let solved = solve(&solver, &definition).unwrap();
    assert_eq!(solved.executed, 1);
    let image = assemble(&solver, &definition, &solved, &ExportOptions::new()).unwrap();
    let local = tempfile::tempdir().unwrap();
    write_local(&store.content, &image, local.path()).unwrap();
    assert_eq!(read(local.path(), "a") + &read(local.path(), "b"), "a\nb\n");
    assert_eq!(image.layers.len(), 3);
}

fn the_native_snapshotter_builds_and_exports_the_same() {
    let store = Store::with(SnapshotterKind::Native);
    let ctx = context(&[("a.txt", "A")]);
    let dockerfile = "FROM busybox AS build\nRUN echo built > /built && rm /bin/ls\n\
                      FROM build\nCOPY a.txt /data/\nCOPY --from=build /built /copied\n";
    let definition = lowered(dockerfile, ctx.path());
    let solver = store.solver(ctx.path(), Arc::new(Recorder::default()));
    let solved = solve(&solver, &definition).unwrap();
    assert_eq!(solve(&solver, &definition).unwrap().executed, 0, "cached on native too");
    let image = assemble(&solver, &definition, &solved, &ExportOptions::new()).unwrap();
    let local = tempfile::tempdir().unwrap();
    write_local(&store.content, &image, local.path()).unwrap();
    assert_eq!(read(local.path(), "data/a.txt") + &read(local.path(), "copied"), "Abuilt\n");
    assert!(local.path().join("bin/busybox").exists() && !local.path().join("bin/ls").exists());
}

fn a_cache_exported_from_one_store_rebuilds_nothing_in_another() {
    let ctx = context(&[("a.txt", "A")]);
    let dockerfile = "FROM busybox AS build\nRUN echo built > /built && rm /bin/ls\n\
                      FROM build\nCOPY a.txt /data/\nRUN echo more > /more\n";
    let definition = lowered(dockerfile, ctx.path());
    let layouts = tempfile::tempdir().unwrap();
    let busybox = strata_testkit::busybox_layout(layouts.path());
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Native] {
        let first = Store::from_layout(kind, &busybox);
        let solver = first.solver(ctx.path(), Arc::new(Recorder::default()));
        let solved = solve(&solver, &definition).unwrap();
        let options = ExportOptions::new();
        let image = assemble(&solver, &definition, &solved, &options).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let diff = strata_exporter::ImageFormat::new().diff_options(None);
        let manifest = cache_image(&solver, &definition, &solved, CacheMode::Max, &diff).unwrap();
        write_oci_layout(&first.content, &manifest, Some("cache:latest"), cache.path()).unwrap();

        let second = Store::from_layout(kind, &busybox);
        let imported = ImportedCache::from_layout(cache.path(), "latest", &second.content).unwrap();
        let progress = Arc::new(Recorder::default());
        let solver = second.builder(ctx.path(), progress.clone()).cache_source(Arc::new(imported)).build();
        let again = solve(&solver, &definition).unwrap();
        assert_eq!(again.executed, 0, "{kind:?}: every RUN comes from the cache");
        let rebuilt = assemble(&solver, &definition, &again, &options).unwrap();
        let digests =
            |image: &strata_exporter::Image| image.layers.iter().map(|l| l.digest().to_string()).collect::<Vec<_>>();
        assert_eq!(digests(&rebuilt), digests(&image), "{kind:?}: the cache's very blobs");
        let local = tempfile::tempdir().unwrap();
        write_local(&second.content, &rebuilt, local.path()).unwrap();
        assert_eq!(read(local.path(), "built") + &read(local.path(), "data/a.txt"), "built\nA");
        assert!(!local.path().join("bin/ls").exists(), "{kind:?}: the deletion survives the round trip");
    }
}
