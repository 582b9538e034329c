//! Runs every case of the build conformance suite (`testdata/conformance/build`) through the parser and the
//! lowering: failures that BuildKit reports before running anything must be reported with BuildKit's words,
//! and the image configuration (decided entirely by the lowering) must be what the case expects. Filesystem
//! expectations need the solver and are checked by the build tests.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use strata_frontend::instructions::go_duration_nanos;
use strata_frontend::lower::{ImageResolver, LowerOptions, ResolvedImage, lower};
use strata_frontend::parser::parse;
use strata_llb::patterns::{PatternMatcher, read_ignore_file};
use strata_llb::{ImageConfig, Platform};
use toml::Value;

/// Failures that happen only when steps run (a failing command, a missing file or secret): the lowering
/// must accept these builds. `(case, step)` with 1-based steps.
const RUNTIME_FAILURES: &[(&str, usize)] = &[
    ("run-failure-error", 1),
    ("cmd-invalid-json-is-shell-form", 1),
    ("copy-parents-missing", 2),
    ("mount-secret-required-missing", 1),
    ("error-source-location", 1),
    ("error-source-location", 2),
];

/// Resolves `busybox` to the configuration of Docker Hub's busybox image (as the test setup's image has it)
/// and local tags to the configurations of earlier steps; nothing else resolves.
struct CaseImages {
    tags: Mutex<BTreeMap<String, ImageConfig>>,
}

impl ImageResolver for CaseImages {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<ResolvedImage, String> {
        let name = reference.trim_start_matches("docker.io/").trim_start_matches("library/");
        if matches!(name, "busybox" | "busybox:latest") {
            let config = ImageConfig {
                env: Some(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()]),
                cmd: Some(vec!["sh".into()]),
                ..Default::default()
            };
            return Ok(ResolvedImage { reference: "docker.io/library/busybox:latest".into(), config });
        }
        match self.tags.lock().unwrap().get(reference) {
            Some(config) => Ok(ResolvedImage { reference: reference.into(), config: config.clone() }),
            None => Err(format!("{reference}: not found")),
        }
    }
}

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/conformance/build")
}

#[test]
fn build_suite_lowers_with_buildkit_errors_and_image_configs() {
    let mut cases: Vec<PathBuf> =
        fs::read_dir(suite()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert_eq!(cases.len(), 101, "the suite has 101 cases");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_owned();
        let expect: Value = toml::from_str(&fs::read_to_string(case.join("expect.toml")).unwrap()).unwrap();
        let steps: Vec<Value> = match expect.get("steps") {
            Some(steps) => steps.as_array().unwrap().clone(),
            None => {
                let mut step = expect.get("build").cloned().unwrap_or(Value::Table(Default::default()));
                step.as_table_mut().unwrap().insert("expect".into(), expect["expect"].clone());
                vec![step]
            }
        };
        let images = CaseImages { tags: Mutex::new(BTreeMap::new()) };
        for (i, step) in steps.iter().enumerate() {
            checked += 1;
            if let Err(message) = check_step(case, &name, i + 1, step, &images) {
                failures.push(format!("{name} step {}: {message}", i + 1));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} builds failed:\n{}", failures.len(), failures.join("\n"));
}

fn check_step(case: &Path, name: &str, number: usize, step: &Value, images: &CaseImages) -> Result<(), String> {
    let dockerfile = step.get("dockerfile").and_then(Value::as_str).unwrap_or("Dockerfile");
    let expect = &step["expect"];
    let error_contains: Vec<&str> = strings(expect.get("error_contains"));
    let should_fail = expect.get("fails").and_then(Value::as_bool).unwrap_or(false) || !error_contains.is_empty();
    let runtime_failure = RUNTIME_FAILURES.contains(&(name, number));

    let text = fs::read_to_string(case.join(dockerfile)).unwrap();
    let mut options = LowerOptions::new().target(step.get("target").and_then(Value::as_str).map(str::to_owned));
    for (key, value) in table(step.get("build_args")) {
        options = options.build_arg(key, value.as_str().unwrap());
    }
    for (key, value) in table(step.get("labels")) {
        options = options.label(key, value.as_str().unwrap());
    }
    let result = ignore_patterns(case, dockerfile, step).and_then(|patterns| {
        let options = options.ignore_patterns(patterns);
        parse(&text, dockerfile).and_then(|ast| lower(&ast, &options, images)).map_err(|e| e.to_string())
    });
    match result {
        Err(error) if should_fail && !runtime_failure => {
            let missing: Vec<&&str> = error_contains.iter().filter(|s| !error.contains(**s)).collect();
            if missing.is_empty() { Ok(()) } else { Err(format!("error {error:?} lacks {missing:?}")) }
        }
        Err(error) => Err(format!("unexpected error: {error}")),
        Ok(_) if should_fail && !runtime_failure => Err(format!("lowered, but must fail with {error_contains:?}")),
        Ok(definition) => {
            if let Some(tag) = step.get("tag").and_then(Value::as_str) {
                images.tags.lock().unwrap().insert(tag.to_owned(), definition.config.clone());
            }
            match expect.get("config") {
                Some(config) => check_config(&definition.config, config),
                None => Ok(()),
            }
        }
    }
}

/// The `.dockerignore` the runner contract names: `<dockerfile>.dockerignore` beside it, else the context's.
fn ignore_patterns(case: &Path, dockerfile: &str, step: &Value) -> Result<Vec<String>, String> {
    let context = case.join(step.get("context").and_then(Value::as_str).unwrap_or("context"));
    let text = fs::read_to_string(case.join(format!("{dockerfile}.dockerignore")))
        .or_else(|_| fs::read_to_string(context.join(".dockerignore")))
        .unwrap_or_default();
    let patterns = read_ignore_file(&text);
    PatternMatcher::new(&patterns).map_err(|e| e.to_string())?;
    Ok(patterns)
}

fn check_config(actual: &ImageConfig, expected: &Value) -> Result<(), String> {
    let json = serde_json::to_value(actual).unwrap();
    let list = |key: &str| -> Vec<String> {
        json.get(key)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let keys = |key: &str| -> Vec<String> {
        let mut keys: Vec<String> =
            json.get(key).and_then(|v| v.as_object()).map(|o| o.keys().cloned().collect()).unwrap_or_default();
        keys.sort();
        keys
    };
    let mut problems = Vec::new();
    for (key, want) in expected.as_table().unwrap() {
        let ok = match key.as_str() {
            "Env" => strings(Some(want)).iter().all(|e| list("Env").iter().any(|a| a == e)),
            "EnvExact" => strings(Some(want)) == list("Env"),
            "EnvAbsent" => {
                strings(Some(want)).iter().all(|n| !list("Env").iter().any(|e| e.starts_with(&format!("{n}="))))
            }
            "Cmd" | "Entrypoint" | "Shell" | "OnBuild" => strings(Some(want)) == list(key),
            "WorkingDir" | "User" | "StopSignal" => json.get(key).and_then(|v| v.as_str()) == want.as_str(),
            "Labels" => {
                table(Some(want)).iter().all(|(k, v)| json["Labels"].get(k).and_then(|a| a.as_str()) == v.as_str())
            }
            "ExposedPorts" | "Volumes" => {
                let mut want: Vec<String> = strings(Some(want)).into_iter().map(str::to_owned).collect();
                want.sort();
                keys(key) == want
            }
            "Healthcheck" => table(Some(want)).iter().all(|(k, v)| {
                let got = json["Healthcheck"].get(k);
                match k.as_str() {
                    "Test" => {
                        got.and_then(|g| g.as_array())
                            .map(|a| a.iter().map(|s| s.as_str().unwrap()).collect::<Vec<_>>())
                            == Some(strings(Some(v)))
                    }
                    "Retries" => got.and_then(|g| g.as_i64()).unwrap_or(0) == v.as_integer().unwrap(),
                    _ => {
                        got.and_then(|g| g.as_i64()).unwrap_or(0)
                            == go_duration_nanos(v.as_str().unwrap()).unwrap() as i64
                    }
                }
            }),
            other => panic!("unknown config key {other} in expect.toml"),
        };
        if !ok {
            problems.push(format!("{key}: expected {want}, got {}", json.get(key).cloned().unwrap_or_default()));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    value.and_then(Value::as_array).map(|a| a.iter().map(|v| v.as_str().unwrap()).collect()).unwrap_or_default()
}

fn table(value: Option<&Value>) -> Vec<(String, Value)> {
    value.and_then(Value::as_table).map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}
