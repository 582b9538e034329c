//! `strata parse` against BuildKit's parser conformance files.

use std::fs;
use std::path::Path;

use assert_cmd::Command;

#[test]
fn parse_prints_buildkit_dump_for_every_testfile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/conformance/parser/testfiles");
    let mut cases: Vec<_> = fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    cases.sort();
    assert_eq!(cases.len(), 33);
    let mut failures = Vec::new();
    for case in &cases {
        let output = Command::cargo_bin("strata")
            .unwrap()
            .args(["parse", "--format", "buildkit", "-f"])
            .arg(case.join("Dockerfile"))
            .output()
            .unwrap();
        let expected = fs::read(case.join("result")).unwrap();
        if !output.status.success() || output.stdout != expected {
            failures.push(format!(
                "{}: status {}\n--- stdout\n{}--- stderr\n{}",
                case.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn parse_errors_go_to_stderr_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    fs::write(&file, "FROM a\nENV PATH\n").unwrap();
    let output = Command::cargo_bin("strata").unwrap().args(["parse", "-f"]).arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Dockerfile:2:1: ENV must have two arguments\nENV PATH\n^"), "{stderr}");
}

#[test]
fn parse_json_has_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    fs::write(&file, "# syntax=x\nFROM a\nRUN <<EOF\nhi\nEOF\n").unwrap();
    let output =
        Command::cargo_bin("strata").unwrap().args(["parse", "--format", "json", "-f"]).arg(&file).output().unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["directives"][0]["name"], "syntax");
    assert_eq!(json["nodes"][1]["keyword"], "run");
    assert_eq!(json["nodes"][1]["heredocs"][0]["content"], "hi\n");
    assert_eq!(json["nodes"][1]["span"]["end"]["line"], 5);
}
