//! `strata build --cache-to/--cache-from`: a cache exported from one root makes a fresh root's build all CACHED,
//! through a layout directory, a registry (min and max modes) and an image's inline cache; corrupted blobs are
//! refused and the step runs.

mod common;

use std::path::{Path, PathBuf};

use common::BusyboxRegistry;

/// Steps whose RUN output (`step-ran-2`, `last-ran-2`) differs from their command text, so output shows they ran.
const STEPS: &str = "RUN echo one > /one && echo step-ran-$((1+1))\nCOPY a.txt /a.txt\n\
                     RUN cat /a.txt > /b.txt && echo last-ran-$((1+1))\n";

/// Writes a context holding `a.txt` and a Dockerfile of `FROM <busybox>` and `steps`.
fn context(registry: &BusyboxRegistry, name: &str, steps: &str) -> PathBuf {
    let dir = registry.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {}\n{steps}", registry.image)).unwrap();
    std::fs::write(dir.join("a.txt"), "first\n").unwrap();
    dir
}

/// Builds with plain progress in the strata root `root` (under the registry's directory) with `args`; returns
/// standard error, panicking when the build fails.
fn build(registry: &BusyboxRegistry, root: &str, args: &[&str], context: &Path) -> String {
    let config = registry.dir.path().join("strata.toml");
    let out = common::strata()
        .arg("--root")
        .arg(registry.dir.path().join(root))
        .arg("--config")
        .arg(config)
        .args(["build", "--progress", "plain"])
        .args(args)
        .arg(context)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build in {root} failed:\n{err}\nregistry log:\n{}", registry.registry.log());
    err
}

/// The summary line's step counts, e.g. `4 steps: 3 cached, 1 run`.
fn counts(err: &str) -> &str {
    let summary = err.lines().last().unwrap();
    let start = summary.find('(').expect(err) + 1;
    &summary[start..summary.find(')').expect(err)]
}

/// The `rootfs.diff_ids` of the image in the OCI layout directory `dir`.
fn diff_ids(dir: &Path) -> Vec<String> {
    let json = |digest: &str| -> serde_json::Value {
        let path = dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = json(index["manifests"][0]["digest"].as_str().unwrap());
    let config = json(manifest["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect()
}

/// The layer digests of the image in the OCI layout directory `dir`.
fn layer_digests(dir: &Path) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let hex = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap();
    manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_local_cache_makes_a_fresh_root_build_cached() {
    if !strata_testkit::require_root("a_local_cache_makes_a_fresh_root_build_cached") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let ctx = context(&registry, "local", STEPS);
    let dir = registry.dir.path();
    let (cache, image_a, image_b) = (dir.join("cache"), dir.join("image-a"), dir.join("image-b"));
    let cache_to = format!("type=local,dest={}", cache.display());
    let cache_from = format!("type=local,src={}", cache.display());
    let out = |path: &Path| format!("type=oci,dest={},tar=false", path.display());

    let first = build(&registry, "root-a", &["--cache-to", &cache_to, "-o", &out(&image_a)], &ctx);
    assert_eq!(counts(&first), "5 steps: 0 cached, 5 run", "{first}");
    assert!(cache.join("index.json").is_file() && cache.join("oci-layout").is_file());

    let again = build(&registry, "root-b", &["--cache-from", &cache_from, "-o", &out(&image_b)], &ctx);
    assert_eq!(counts(&again), "5 steps: 3 cached, 2 run", "only FROM and the context load run: {again}");
    assert!(!again.contains("step-ran-2") && !again.contains("last-ran-2"), "no RUN ran: {again}");
    assert_eq!(diff_ids(&image_a), diff_ids(&image_b), "the same layers");
    assert_eq!(layer_digests(&image_a), layer_digests(&image_b), "the cache's very blobs");

    // A changed context file: the first RUN still comes from the cache, the COPY and what follows run.
    std::fs::write(ctx.join("a.txt"), "second\n").unwrap();
    let changed = build(&registry, "root-c", &["--cache-from", &cache_from], &ctx);
    assert_eq!(counts(&changed), "5 steps: 1 cached, 4 run", "{changed}");
    assert!(!changed.contains("step-ran-2") && changed.contains("last-ran-2"), "{changed}");

    // --no-cache ignores imported caches too.
    std::fs::write(ctx.join("a.txt"), "first\n").unwrap();
    let uncached = build(&registry, "root-d", &["--no-cache", "--cache-from", &cache_from], &ctx);
    assert_eq!(counts(&uncached), "5 steps: 0 cached, 5 run", "{uncached}");
}

#[test]
fn a_corrupted_cache_blob_is_refused_and_the_step_runs() {
    if !strata_testkit::require_root("a_corrupted_cache_blob_is_refused_and_the_step_runs") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let ctx = context(&registry, "corrupt", STEPS);
    let dir = registry.dir.path();
    let (cache, image) = (dir.join("cache"), dir.join("image"));
    let cache_to = format!("type=local,dest={}", cache.display());
    let output = format!("type=oci,dest={},tar=false", image.display());
    build(&registry, "root-a", &["--cache-to", &cache_to, "-o", &output], &ctx);

    // The first RUN's layer (after busybox's one) is in the cache; flip one byte of it.
    let layers = layer_digests(&image);
    let blob = cache.join("blobs/sha256").join(layers[1].trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::remove_file(&blob).unwrap(); // a hard link to root A's content store: leave that copy intact
    std::fs::write(&blob, bytes).unwrap();

    let cache_from = format!("type=local,src={}", cache.display());
    let err = build(&registry, "root-b", &["--cache-from", &cache_from], &ctx);
    let warning = format!("WARNING: cache layer {} not used", layers[1]);
    assert!(err.contains(&warning) && err.contains("failed verification"), "{err}");
    assert!(err.contains("step-ran-2") && err.contains("last-ran-2"), "the steps ran: {err}");
    assert_eq!(counts(&err), "5 steps: 0 cached, 5 run", "{err}");
}

#[test]
fn a_registry_cache_keeps_other_stages_only_in_max_mode() {
    if !strata_testkit::require_root("a_registry_cache_keeps_other_stages_only_in_max_mode") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let stages = format!(
        "RUN echo built > /artifact && echo builder-ran-$((1+1))\nFROM {} AS final\n\
         COPY --from=0 /artifact /artifact\nRUN cat /artifact && echo final-ran-$((1+1))\n",
        registry.image
    );
    let ctx = context(&registry, "stages", &stages);
    let addr = registry.registry.addr();
    let (min, max) = (format!("{addr}/cache:min"), format!("{addr}/cache:max"));
    let first = build(
        &registry,
        "root-a",
        &[
            "--cache-to",
            &format!("type=registry,ref={min}"),
            "--cache-to",
            &format!("type=registry,ref={max},mode=max"),
        ],
        &ctx,
    );
    assert!(first.contains("builder-ran-2") && first.contains("final-ran-2"), "{first}");

    let with_min = build(&registry, "root-b", &["--cache-from", &format!("type=registry,ref={min}")], &ctx);
    assert!(with_min.contains("builder-ran-2"), "min mode does not cache the builder stage: {with_min}");
    assert!(!with_min.contains("final-ran-2"), "min mode caches the image's steps: {with_min}");

    let with_max = build(&registry, "root-c", &["--cache-from", &format!("type=registry,ref={max}")], &ctx);
    assert!(!with_max.contains("builder-ran-2") && !with_max.contains("final-ran-2"), "{with_max}");
    assert_eq!(counts(&with_max), "4 steps: 3 cached, 1 run", "only FROM resolves: {with_max}");

    // The cache is an ordinary OCI artifact the registry serves to any client.
    strata_testkit::require_tool("skopeo");
    let raw = strata_testkit::run(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{max}"),
    ]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{raw}");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.strata.cache.config.v1+json", "{raw}");
    assert!(manifest["layers"].as_array().unwrap().len() >= 3, "busybox and both stages' layers: {raw}");
}

#[test]
fn an_inline_cache_in_a_pushed_image_is_used_from_the_registry() {
    if !strata_testkit::require_root("an_inline_cache_in_a_pushed_image_is_used_from_the_registry") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let ctx = context(&registry, "inline", STEPS);
    let app = format!("{}/app:1", registry.registry.addr());
    let first = build(&registry, "root-a", &["--cache-to", "type=inline", "--push", "-t", &app], &ctx);
    assert_eq!(counts(&first), "5 steps: 0 cached, 5 run", "{first}");

    let again = build(&registry, "root-b", &["--cache-from", &format!("type=registry,ref={app}")], &ctx);
    assert_eq!(counts(&again), "5 steps: 3 cached, 2 run", "{again}");
    assert!(!again.contains("step-ran-2") && !again.contains("last-ran-2"), "{again}");

    // A cache that is missing, or an image without one, is a warning, as in buildx: the build goes on.
    let missing = format!("type=registry,ref={}/missing:1", registry.registry.addr());
    let none = format!("type=registry,ref={}", registry.image);
    let err = build(&registry, "root-c", &["--cache-from", &missing, "--cache-from", &none], &ctx);
    assert!(
        err.contains(&format!("WARNING: --cache-from {missing}: ")) && err.contains("building without it"),
        "{err}"
    );
    assert!(err.contains(&format!("WARNING: --cache-from {none} holds no cache records")), "{err}");
    assert_eq!(counts(&err), "5 steps: 0 cached, 5 run", "{err}");
}

#[test]
fn bad_cache_specs_name_the_flag_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    for (flag, spec, message) in [
        ("--cache-to", "type=local", "--cache-to type=local: dest=DIR is required"),
        ("--cache-to", "type=registry,ref=r.io/c,mode=all", "mode=all is not min or max"),
        ("--cache-from", "type=gha", "--cache-from type=gha: type=gha is not supported (local and registry are)"),
        ("--cache-from", "type=local,src=d,mode=max", "unknown field \"mode\""),
    ] {
        let out = common::strata()
            .arg("--root")
            .arg(dir.path().join("root"))
            .args(["build", flag, spec])
            .arg(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(message), "{flag} {spec}: {err}");
    }
}

#[test]
fn secrets_never_reach_a_cache() {
    if !strata_testkit::require_root("secrets_never_reach_a_cache") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let steps = "RUN --mount=type=secret,id=token cp /run/secrets/token /seen && rm /seen && echo used > /used\n";
    let ctx = context(&registry, "secret", steps);
    let cache = registry.dir.path().join("cache");
    let secret = registry.dir.path().join("token");
    std::fs::write(&secret, "hunter2-cache-secret").unwrap();
    let secret_arg = format!("id=token,src={}", secret.display());
    let cache_to = format!("type=local,dest={},mode=max", cache.display());
    build(&registry, "root-a", &["--secret", &secret_arg, "--cache-to", &cache_to], &ctx);
    for entry in std::fs::read_dir(cache.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read(&path).unwrap();
        // Layers are gzip: look inside them too.
        if let Ok(out) = std::process::Command::new("gzip").arg("-dc").arg(&path).output()
            && out.status.success()
        {
            text.extend(out.stdout);
        }
        assert!(
            !String::from_utf8_lossy(&text).contains("hunter2-cache-secret"),
            "{} holds the secret",
            path.display()
        );
    }
}
