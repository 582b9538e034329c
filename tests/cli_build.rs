//! `strata build`: `--call targets|outline` and `--print-graph` on `testdata/examples/hello`, and real builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;

mod common;
use common::busybox_mirror;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/examples/hello")
}

fn strata_build(args: &[&str]) -> assert_cmd::assert::Assert {
    cargo_bin_cmd!("strata").arg("build").args(args).arg(example()).assert()
}

fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).unwrap()
}

#[test]
fn call_targets_lists_named_stages_and_the_default() {
    let out = stdout(&strata_build(&["--call", "targets"]).success());
    assert_eq!(
        out,
        "TARGET      DESCRIPTION\nbuild       build compiles the greeting\ntest        test checks the greeting\n\
         (default)   the image that ships\n"
    );
}

#[test]
fn call_outline_shows_args_with_overrides_and_secrets() {
    let out = stdout(&strata_build(&["--call", "outline", "--target", "TEST", "--build-arg", "GREETING=hi"]).success());
    assert!(out.starts_with("TARGET:      test\nDESCRIPTION: test checks the greeting\n"), "{out}");
    assert!(out.contains("GREETING    hi        GREETING is the text the image prints\n"), "{out}");
    assert!(out.contains("SECRET   REQUIRED\ntoken    false\n"), "{out}");
}

#[test]
fn print_graph_dot_renders_with_graphviz() {
    let dot = stdout(&strata_build(&["--print-graph=dot"]).success());
    assert!(dot.contains("[build 5/5] RUN --mount=type=cache"), "{dot}");
    let mut graphviz = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("graphviz's dot is installed by .ci/run");
    use std::io::Write;
    graphviz.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
    let svg = graphviz.wait_with_output().unwrap();
    assert!(svg.status.success());
    assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));
}

#[test]
fn print_graph_json_is_the_lowered_graph() {
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&strata_build(&["--print-graph=json"]).success())).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["op"]["op"] == "exec"));
    // The test stage is not reached by the default target, so its RUN is not in the graph.
    assert!(!nodes.iter().any(|n| n["meta"]["description"].as_str().unwrap().contains("grep -q")));
}

#[test]
fn unknown_target_and_bad_instruction_fail_with_clear_errors() {
    let assert = strata_build(&["--target", "bulid", "--call", "outline"]).failure();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(err.contains("target stage \"bulid\" could not be found (did you mean build?)"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM busybox\n  FNTRYPOINT x\n").unwrap();
    let assert = cargo_bin_cmd!("strata").args(["build", "--print-graph=dot"]).arg(dir.path()).assert().failure();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(err.contains("Dockerfile:2:3: unknown instruction: FNTRYPOINT (did you mean ENTRYPOINT?)"), "{err}");
    assert!(err.contains("  FNTRYPOINT x\n  ^"), "{err}");
}

#[test]
fn builds_from_a_registry_mirror_then_from_the_local_tag() {
    if !strata_testkit::require_root("builds_from_a_registry_mirror_then_from_the_local_tag") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (registry, config) = busybox_mirror(dir.path());
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("hello.txt"), "hello").unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt > /copied\n")
        .unwrap();
    let root = dir.path().join("root");
    let build = |dockerfile: &str, out: &std::path::Path| {
        cargo_bin_cmd!("strata")
            .arg("--root")
            .arg(&root)
            .arg("--config")
            .arg(&config)
            .args(["build", "-f"])
            .arg(context.join(dockerfile))
            .args(["-t", "conformance.local/base", "--progress", "plain", "-o"])
            .arg(format!("type=oci,dest={},tar=false", out.display()))
            .arg("--metadata-file")
            .arg(out.with_extension("json"))
            .arg(&context)
            .assert()
    };
    let first = dir.path().join("first");
    let assert = build("Dockerfile", &first).success();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(err.contains("[1/3] FROM") || err.contains("RUN cat /hello.txt > /copied"), "{err}");
    assert!(err.contains("DONE"), "{err}");
    let inspected = strata_testkit::run(Command::new("skopeo").arg("inspect").arg(format!("oci:{}", first.display())));
    assert!(inspected.contains("\"Layers\""), "{inspected}");
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.with_extension("json")).unwrap()).unwrap();
    assert!(metadata["containerimage.digest"].as_str().unwrap().starts_with("sha256:"), "{metadata}");

    let again = build("Dockerfile", &dir.path().join("again")).success();
    let err = String::from_utf8_lossy(&again.get_output().stderr).into_owned();
    assert!(err.contains("CACHED"), "a rebuild is cached: {err}");

    let run = cargo_bin_cmd!("strata")
        .arg("--root")
        .arg(&root)
        .args(["run", "--rm", "conformance.local/base", "cat", "/copied"])
        .assert()
        .success();
    assert_eq!(stdout(&run), "hello", "strata run starts the built image");

    // The registry is gone: the local tag must resolve from the store.
    drop(registry);
    std::fs::write(context.join("Dockerfile.child"), "FROM conformance.local/base\nRUN cat /copied\n").unwrap();
    let child = dir.path().join("child");
    let assert = build("Dockerfile.child", &child).success();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(err.contains("hello"), "{err}");
}

#[test]
fn build_push_uploads_the_image_that_pull_and_run_get_back() {
    if !strata_testkit::require_root("build_push_uploads_the_image_that_pull_and_run_get_back") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (registry, config) = busybox_mirror(dir.path());
    let addr = registry.addr();
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox\nRUN echo pushed > /greeting\nCMD [\"cat\", \"/greeting\"]\n",
    )
    .unwrap();
    let strata = |root: &str| {
        let mut cmd = cargo_bin_cmd!("strata");
        cmd.arg("--root").arg(dir.path().join(root)).arg("--config").arg(&config);
        cmd
    };
    let metadata_file = dir.path().join("metadata.json");
    let pushed = format!("{addr}/demo/pushed:v1");
    strata("builder")
        .args(["build", "--progress", "quiet", "-t", &pushed, "--push", "--metadata-file"])
        .arg(&metadata_file)
        .arg(&context)
        .assert()
        .success();
    let metadata: serde_json::Value = serde_json::from_slice(&std::fs::read(&metadata_file).unwrap()).unwrap();
    let inspected = strata_testkit::run(
        Command::new("skopeo").args(["inspect", "--tls-verify=false"]).arg(format!("docker://{pushed}")),
    );
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["Digest"], metadata["containerimage.digest"], "{inspected}");

    // BuildKit's output syntax pushes the same way, under another name.
    let other = format!("{addr}/demo/registry-output:v1");
    strata("builder")
        .args(["build", "--progress", "quiet", "-o"])
        .arg(format!("type=registry,name={other}"))
        .arg(&context)
        .assert()
        .success();
    strata_testkit::run(
        Command::new("skopeo").args(["inspect", "--tls-verify=false"]).arg(format!("docker://{other}")),
    );

    strata("fresh").args(["pull", &pushed]).assert().success();
    let run = strata("fresh").args(["run", "--rm", &pushed]).assert().success();
    assert_eq!(stdout(&run), "pushed\n", "the pulled image runs its CMD");
}
