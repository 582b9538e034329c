//! The build suite of `testdata/conformance` (see its README for the runner contract): every step runs the
//! `strata` binary as a user would (`strata --root STATE --config CONFIG build ... -o type=oci,...`), with
//! busybox served from a local registry through the `docker.io` mirror, and its expectations are checked on
//! the layers and config of the OCI layout it wrote. Prints each failing case and asserts a floor of passes.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;
use strata_frontend::instructions::go_duration_nanos;
use strata_snapshotter::{SnapshotLayout, apply};
use toml::Value;

/// Cases that passed when this floor was last raised; a regression below it fails the test.
const PASSING_FLOOR: usize = 101;

#[test]
fn conformance_build_suite() {
    if !strata_testkit::require_root("conformance_build_suite") {
        return;
    }
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/conformance/build");
    let mirror = Mirror::start();
    let filter = std::env::var("CONFORMANCE_CASE").ok();
    let mut cases: Vec<PathBuf> =
        fs::read_dir(&suite).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("expect.toml").is_file()).collect();
    cases.sort();
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match run_case(&case, &mirror) {
            Ok(()) => passed.push(name),
            Err(reason) => failed.push(format!("{name}: {}", reason.lines().next().unwrap_or_default())),
        }
    }
    eprintln!("conformance build suite: {} passed, {} failed", passed.len(), failed.len());
    for failure in &failed {
        eprintln!("FAIL {failure}");
    }
    if filter.is_none() {
        assert!(passed.len() >= PASSING_FLOOR, "{} cases pass, fewer than the floor {PASSING_FLOOR}", passed.len());
    } else {
        assert!(failed.is_empty(), "the selected cases must pass");
    }
}

/// One registry for the whole run, holding busybox as `library/busybox:latest`, and the `--config` file that
/// makes it the `docker.io` mirror, so `FROM busybox` resolves without the network and nothing else does.
struct Mirror {
    /// Held only to keep the registry running: dropping it stops the registry.
    _registry: strata_testkit::Registry,
    dir: tempfile::TempDir,
}

impl Mirror {
    fn start() -> Self {
        let registry = strata_testkit::Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let addr = registry.addr();
        let dest = format!("docker://{addr}/library/busybox:latest");
        strata_testkit::skopeo_push_busybox(dir.path(), &dest, &["--dest-tls-verify=false"]);
        let config = format!("[registry.\"docker.io\"]\nmirrors = [\"{addr}\"]\n[registry.\"{addr}\"]\nhttp = true\n");
        fs::write(dir.path().join("strata.toml"), config).unwrap();
        Self { _registry: registry, dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("strata.toml")
    }
}

/// What a successful build left to check.
struct Built {
    rootfs: tempfile::TempDir,
    config: serde_json::Value,
}

fn run_case(case: &Path, mirror: &Mirror) -> Result<(), String> {
    let expect: Value =
        toml::from_str(&fs::read_to_string(case.join("expect.toml")).unwrap()).map_err(|e| e.to_string())?;
    let steps: Vec<Value> = match expect.get("steps") {
        Some(Value::Array(steps)) => steps.clone(),
        _ => {
            let mut step = expect.get("build").cloned().unwrap_or(Value::Table(Default::default()));
            step.as_table_mut().unwrap().insert("expect".into(), expect["expect"].clone());
            vec![step]
        }
    };
    // Steps of one case share the builder state: cache, cache mounts and `-t` tags.
    let state = tempfile::tempdir().unwrap();
    let mut results: Vec<Option<Built>> = Vec::new();
    for (number, step) in steps.iter().enumerate() {
        let context = make_context(case, step, expect.get("context"));
        let outcome = build(mirror, state.path(), case, step, context.path());
        let checks = &step["expect"];
        let wants_failure =
            checks.get("fails").and_then(Value::as_bool).unwrap_or(false) || checks.get("error_contains").is_some();
        match (outcome, wants_failure) {
            (Err(error), true) => {
                for needle in strings(checks.get("error_contains")) {
                    if !error.contains(&needle) {
                        return Err(format!("step {}: error {error:?} lacks {needle:?}", number + 1));
                    }
                }
                results.push(None);
            }
            (Err(error), false) => return Err(format!("step {}: {error}", number + 1)),
            (Ok(_), true) => return Err(format!("step {}: built, but should fail", number + 1)),
            (Ok(built), false) => {
                check(&built, checks, context.path(), &results).map_err(|e| format!("step {}: {e}", number + 1))?;
                results.push(Some(built));
            }
        }
    }
    Ok(())
}

/// The step's context: the case's folder copied, then `[context]` applied.
fn make_context(case: &Path, step: &Value, extra: Option<&Value>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = case.join(step.get("context").and_then(Value::as_str).unwrap_or("context"));
    if source.is_dir() {
        strata_testkit::run(Command::new("cp").arg("-a").arg(format!("{}/.", source.display())).arg(dir.path()));
    }
    let Some(extra) = extra else { return dir };
    for d in strings(extra.get("dirs")) {
        fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    for (link, target) in extra.get("symlinks").and_then(Value::as_table).into_iter().flatten() {
        let link = dir.path().join(link);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target.as_str().unwrap(), link).unwrap();
    }
    for (path, mode) in extra.get("modes").and_then(Value::as_table).into_iter().flatten() {
        let mode = u32::from_str_radix(mode.as_str().unwrap(), 8).unwrap();
        fs::set_permissions(dir.path().join(path), fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value.and_then(Value::as_array).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

fn table(value: Option<&Value>) -> Vec<(String, String)> {
    value
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// Builds one step with `strata build`; the error is its standard error.
fn build(mirror: &Mirror, state: &Path, case: &Path, step: &Value, context: &Path) -> Result<Built, String> {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out");
    let mut command = cargo_bin_cmd!("strata");
    command.arg("--root").arg(state).arg("--config").arg(mirror.config()).arg("build").arg("-f");
    command.arg(case.join(step.get("dockerfile").and_then(Value::as_str).unwrap_or("Dockerfile")));
    for (name, value) in table(step.get("build_args")) {
        command.arg("--build-arg").arg(format!("{name}={value}"));
    }
    if let Some(target) = step.get("target").and_then(Value::as_str) {
        command.args(["--target", target]);
    }
    for (name, value) in table(step.get("labels")) {
        command.arg("--label").arg(format!("{name}={value}"));
    }
    for (id, value) in table(step.get("secrets")) {
        let file = scratch.path().join(format!("secret-{id}"));
        fs::write(&file, value).unwrap();
        command.arg("--secret").arg(format!("id={id},src={}", file.display()));
    }
    if step.get("no_cache").and_then(Value::as_bool).unwrap_or(false) {
        command.arg("--no-cache");
    }
    if let Some(tag) = step.get("tag").and_then(Value::as_str) {
        command.args(["-t", tag]);
    }
    command.args(["--progress", "plain", "-o"]).arg(format!("type=oci,dest={},tar=false", out.display())).arg(context);
    let output = command.output().map_err(|e| format!("running strata: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    read_layout(&out)
}

/// The image of an OCI layout: its layers applied in order (whiteouts honoured) and its config.
fn read_layout(layout: &Path) -> Result<Built, String> {
    let json = |digest: &str| -> Result<serde_json::Value, String> {
        let blob = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&fs::read(&blob).map_err(|e| format!("{}: {e}", blob.display()))?)
            .map_err(|e| e.to_string())
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let manifest = json(index["manifests"][0]["digest"].as_str().ok_or("index.json names no manifest")?)?;
    let rootfs = tempfile::tempdir().unwrap();
    let tree = SnapshotLayout::Full { dir: rootfs.path().to_owned(), parent: None };
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let digest = layer["digest"].as_str().ok_or("a layer without digest")?;
        let blob = fs::File::open(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:")))
            .map_err(|e| format!("layer {digest}: {e}"))?;
        apply(blob, None, &tree).map_err(|e| format!("applying layer {digest}: {e}"))?;
    }
    let config = json(manifest["config"]["digest"].as_str().ok_or("the manifest names no config")?)?;
    Ok(Built { rootfs, config: config["config"].clone() })
}

/// A path of the image resolved inside its root, following symlinks (absolute ones against the root).
fn resolve(root: &Path, path: &str) -> PathBuf {
    let mut current = root.to_owned();
    let mut pending: Vec<String> = path.split('/').filter(|p| !p.is_empty()).rev().map(str::to_owned).collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            if current != root {
                current.pop();
            }
            continue;
        }
        let next = current.join(&part);
        match fs::read_link(&next) {
            Ok(target) if hops < 40 => {
                hops += 1;
                if target.is_absolute() {
                    current = root.to_owned();
                }
                pending.extend(target.to_string_lossy().split('/').filter(|p| !p.is_empty()).rev().map(str::to_owned));
            }
            _ => current = next,
        }
    }
    current
}

fn check(built: &Built, expect: &Value, context: &Path, earlier: &[Option<Built>]) -> Result<(), String> {
    let root = built.rootfs.path();
    let entry = |path: &str| root.join(path.trim_start_matches('/'));
    for path in strings(expect.get("absent")) {
        if fs::symlink_metadata(entry(&path)).is_ok() {
            return Err(format!("{path} exists"));
        }
    }
    for file in expect.get("files").and_then(Value::as_array).into_iter().flatten() {
        let path = file["path"].as_str().unwrap();
        let meta = fs::symlink_metadata(entry(path)).map_err(|e| format!("{path}: {e}"))?;
        let content = || fs::read(resolve(root, path)).map_err(|e| format!("reading {path}: {e}"));
        let text = || content().map(|c| String::from_utf8_lossy(&c).into_owned());
        for (key, want) in file.as_table().unwrap() {
            let ok = match key.as_str() {
                "path" => true,
                "type" => {
                    let kind = if meta.is_symlink() {
                        "symlink"
                    } else if meta.is_dir() {
                        "dir"
                    } else {
                        "file"
                    };
                    want.as_str() == Some(kind)
                }
                "content" => text()? == want.as_str().unwrap(),
                "content_contains" => strings(Some(want)).iter().all(|s| text().is_ok_and(|t| t.contains(s))),
                "content_not_contains" => strings(Some(want)).iter().all(|s| text().is_ok_and(|t| !t.contains(s))),
                "same_as_context" => fs::read(context.join(want.as_str().unwrap())).ok() == content().ok(),
                "same_as_step" | "differs_from_step" => {
                    let step = want.as_integer().unwrap() as usize;
                    let other = earlier
                        .get(step - 1)
                        .and_then(Option::as_ref)
                        .map(|b| fs::read(resolve(b.rootfs.path(), path)).ok());
                    (other.flatten() == content().ok()) == (key == "same_as_step")
                }
                "mode" => format!("{:04o}", meta.mode() & 0o7777) == want.as_str().unwrap(),
                "owner" => format!("{}:{}", meta.uid(), meta.gid()) == want.as_str().unwrap(),
                "target" => {
                    fs::read_link(entry(path)).ok().map(|t| t.to_string_lossy().into_owned()).as_deref()
                        == want.as_str()
                }
                "empty" => fs::read_dir(entry(path)).map(|mut d| d.next().is_none()).ok() == want.as_bool(),
                "hardlink_of" => {
                    fs::symlink_metadata(entry(want.as_str().unwrap())).is_ok_and(|o| o.ino() == meta.ino())
                }
                other => return Err(format!("unknown file check {other}")),
            };
            if !ok {
                return Err(format!("{path}: {key} is not {want}"));
            }
        }
    }
    if let Some(config) = expect.get("config").and_then(Value::as_table) {
        check_config(&built.config, config)?;
    }
    Ok(())
}

fn check_config(config: &serde_json::Value, expect: &toml::Table) -> Result<(), String> {
    let list = |key: &str| -> Vec<String> {
        config[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    };
    let keys = |key: &str| -> Vec<String> {
        let mut keys: Vec<String> = config[key].as_object().into_iter().flatten().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys
    };
    for (key, want) in expect {
        let ok = match key.as_str() {
            "Env" => strings(Some(want)).iter().all(|e| list("Env").contains(e)),
            "EnvExact" => list("Env") == strings(Some(want)),
            "EnvAbsent" => {
                strings(Some(want)).iter().all(|n| !list("Env").iter().any(|e| e.starts_with(&format!("{n}="))))
            }
            "Cmd" | "Entrypoint" | "Shell" | "OnBuild" => list(key) == strings(Some(want)),
            "WorkingDir" | "User" | "StopSignal" => config[key].as_str().unwrap_or_default() == want.as_str().unwrap(),
            "Labels" => table(Some(want)).iter().all(|(k, v)| config["Labels"][k].as_str() == Some(v)),
            "ExposedPorts" | "Volumes" => {
                let mut wanted = strings(Some(want));
                wanted.sort();
                keys(key) == wanted
            }
            "Healthcheck" => want.as_table().unwrap().iter().all(|(field, value)| {
                let actual = &config["Healthcheck"][field];
                match (field.as_str(), value) {
                    ("Test", _) => {
                        actual.as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect::<Vec<_>>()
                            == strings(Some(value)).iter().map(String::as_str).collect::<Vec<_>>()
                    }
                    ("Retries", Value::Integer(n)) => actual.as_i64().unwrap_or(0) == *n,
                    (_, Value::String(duration)) => {
                        Some(i128::from(actual.as_i64().unwrap_or(0))) == go_duration_nanos(duration)
                    }
                    _ => false,
                }
            }),
            other => return Err(format!("unknown config check {other}")),
        };
        if !ok {
            return Err(format!("config {key} is not {want} (config: {config})"));
        }
    }
    Ok(())
}
