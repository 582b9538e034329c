//! `strata build --progress`: the plain, rawjson and tty renderings of a real build, and Ctrl-C cancelling a
//! running step without leaving processes, mounts or cache records behind.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::BusyboxRegistry;

/// Writes a context whose Dockerfile is `FROM <busybox>` followed by `steps`.
fn context(registry: &BusyboxRegistry, name: &str, steps: &str) -> std::path::PathBuf {
    let dir = registry.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {}\n{steps}", registry.image)).unwrap();
    dir
}

/// Builds `context` with `--progress mode`; returns standard error, panicking when the build fails.
fn build(registry: &BusyboxRegistry, context: &Path, mode: &str) -> String {
    let out = registry.strata().args(["build", "--progress", mode]).arg(context).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed:\n{err}");
    err
}

#[test]
fn plain_progress_prints_buildkit_blocks_and_a_summary() {
    if !strata_testkit::require_root("plain_progress_prints_buildkit_blocks_and_a_summary") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let context = context(&registry, "plain", "RUN echo first-line && echo second-line\nRUN true\n");
    let err = build(&registry, &context, "plain");
    let lines: Vec<&str> = err.lines().collect();
    let run = lines.iter().find(|l| l.ends_with("RUN echo first-line && echo second-line")).expect(&err);
    let number = run.split(' ').next().unwrap();
    assert!(number.starts_with('#') && run.contains("#2 [2/3] RUN echo"), "{err}");
    let output = lines.iter().find(|l| l.ends_with(" first-line")).expect(&err);
    let words: Vec<&str> = output.split(' ').collect();
    assert_eq!(words[0], number, "{err}");
    assert!(words[1].parse::<f64>().is_ok() && words[1].contains('.'), "a timestamp: {err}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("{number} DONE ")) && l.ends_with('s')), "{err}");
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with("strata: built in ") && summary.contains("(3 steps: 0 cached, 3 run) sha256:"),
        "{err}"
    );

    let again = build(&registry, &context, "plain");
    assert!(again.contains(&format!("{number} CACHED")), "{again}");
    assert!(again.lines().last().unwrap().contains("(3 steps: 2 cached, 1 run)"), "{again}");
}

#[test]
fn rawjson_progress_is_solve_status_json() {
    if !strata_testkit::require_root("rawjson_progress_is_solve_status_json") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let context = context(&registry, "rawjson", "RUN echo from-the-step\n");
    let err = build(&registry, &context, "rawjson");
    let statuses: Vec<serde_json::Value> =
        err.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{err}"))).collect();
    let vertexes: Vec<&serde_json::Value> =
        statuses.iter().filter_map(|s| s["vertexes"].as_array()).flatten().collect();
    let run = vertexes.iter().find(|v| v["name"].as_str().unwrap().ends_with("RUN echo from-the-step")).expect(&err);
    let digest = run["digest"].as_str().unwrap();
    assert!(run["started"].is_string(), "{run}");
    let completed = vertexes.iter().find(|v| v["digest"] == digest && v["completed"].is_string()).expect(&err);
    assert!(completed.get("error").is_none(), "{completed}");
    let log = statuses.iter().filter_map(|s| s["logs"].as_array()).flatten().find(|l| l["vertex"] == digest);
    let log = log.expect(&err);
    assert_eq!(log["stream"], 1);
    assert_eq!(log["data"], "ZnJvbS10aGUtc3RlcAo=", "base64 of 'from-the-step\\n'");
}

#[test]
fn tty_progress_renders_live_and_finishes() {
    if !strata_testkit::require_root("tty_progress_renders_live_and_finishes") {
        return;
    }
    strata_testkit::require_tool("script");
    let registry = BusyboxRegistry::start();
    let context = context(&registry, "tty", "RUN for i in 1 2 3 4 5; do echo line-$i; sleep 0.2; done\n");
    let strata = assert_cmd::cargo::cargo_bin!("strata");
    let command = format!(
        "{} --root {} --config {} build --progress tty {} 2>&1",
        strata.display(),
        registry.root().display(),
        registry.dir.path().join("strata.toml").display(),
        context.display()
    );
    // `script` runs the build on a pseudo-terminal, so standard error is a tty.
    let out = Command::new("script").args(["-qec", &command, "/dev/null"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains("[+] Building") && text.contains("FINISHED"), "{text}");
    assert!(text.contains(" => => # line-"), "running output is shown under the step: {text}");
    assert!(text.contains("strata: built in "), "{text}");
}

/// Starts a plain build of `context`, waits until its output shows `marker`, sends `signal` and returns the exit
/// code, the time from the signal to the exit, and standard error.
fn interrupt_build(registry: &BusyboxRegistry, context: &Path, marker: &str, signal: i32) -> (i32, Duration, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("strata"))
        .arg("--root")
        .arg(registry.root())
        .arg("--config")
        .arg(registry.dir.path().join("strata.toml"))
        .args(["build", "--progress", "plain"])
        .arg(context)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut err = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        if line.ends_with(marker) && !line.contains("RUN") {
            break;
        }
    }
    assert!(err.lines().any(|l| l.ends_with(marker) && !l.contains("RUN")), "the step never started:\n{err}");
    // SAFETY: kill sends a signal to the child we started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(20), "the build did not stop:\n{err}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    lines.map_while(Result::ok).for_each(|line| err.push_str(&format!("{line}\n")));
    (status.code().unwrap_or(-1), took, err)
}

/// Whether any process runs with exactly `args` as its command line.
fn process_running(args: &[&str]) -> bool {
    let wanted: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .any(|cmdline| cmdline == wanted)
}

#[test]
fn ctrl_c_stops_the_running_step_and_records_nothing() {
    if !strata_testkit::require_root("ctrl_c_stops_the_running_step_and_records_nothing") {
        return;
    }
    let registry = BusyboxRegistry::start();
    let sleeper = context(&registry, "cancel", "RUN echo sleeping-now && sleep 987\n");
    let (code, took, err) = interrupt_build(&registry, &sleeper, "sleeping-now", libc::SIGINT);
    assert_eq!(code, 130, "128 + SIGINT:\n{err}");
    assert!(took < Duration::from_secs(5), "stopped in {took:?}:\n{err}");
    assert!(err.contains(" CANCELED\n"), "{err}");
    assert!(err.contains("build canceled by SIGINT"), "{err}");
    assert!(!process_running(&["sleep", "987"]), "the step's process is gone");
    let root = registry.root().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "no mount of the build remains:\n{mounts}");
    let snapshots = std::fs::read_dir(registry.root().join("snapshots")).map_or(0, |dir| dir.count());
    assert_eq!(snapshots, 1, "only busybox's one layer is left, not the canceled step's snapshot");

    // Not recorded: the same step runs again (its output line shows) rather than being CACHED; SIGTERM stops it.
    let (code, _, err) = interrupt_build(&registry, &sleeper, "sleeping-now", libc::SIGTERM);
    assert_eq!(code, 143, "128 + SIGTERM:\n{err}");
    assert!(!process_running(&["sleep", "987"]));

    let other = context(&registry, "after-cancel", "RUN echo sleeping-now > /file\n");
    let err = build(&registry, &other, "plain");
    assert!(err.contains("strata: built in"), "the root still builds:\n{err}");
}

#[test]
fn tty_progress_refuses_a_standard_error_that_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin!("strata"))
        .arg("--root")
        .arg(dir.path().join("root"))
        .args(["build", "--progress", "tty"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--progress=tty: standard error is not a terminal"), "{err}");
}
