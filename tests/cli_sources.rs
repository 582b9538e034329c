//! `strata build` with remote sources and named contexts: ADD of URLs from an HTTP server the test runs, ADD of
//! git repositories served by `git daemon` and over dumb HTTP, and `--build-context` with a directory, a
//! registry image and OCI layouts.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

mod common;
use common::{busybox_mirror, strata};

/// A file the server serves: its body and `Last-Modified` header.
#[derive(Clone)]
struct Resource {
    body: Vec<u8>,
    last_modified: Option<String>,
}

/// What the server serves and how often each path was asked for.
#[derive(Default)]
struct Served {
    files: HashMap<String, Resource>,
    /// `(URL prefix, directory)`: files below the prefix come from the directory (a git repository).
    dirs: Vec<(String, PathBuf)>,
    requests: HashMap<String, usize>,
    /// How often each path's body was sent (not a 304).
    bodies: HashMap<String, usize>,
}

/// A small HTTP/1.1 server on 127.0.0.1: one response per connection, 404 for anything unknown.
struct Server {
    addr: String,
    served: Arc<Mutex<Served>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = Arc::new(Mutex::new(Served::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (state, stopped) = (served.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let state = state.clone();
                    std::thread::spawn(move || respond(stream, &state));
                }
            }
        });
        Self { addr, served, stop }
    }

    fn put(&self, path: &str, body: &str, last_modified: Option<&str>) {
        let resource = Resource { body: body.as_bytes().to_vec(), last_modified: last_modified.map(str::to_owned) };
        self.served.lock().unwrap().files.insert(path.to_owned(), resource);
    }

    fn serve_dir(&self, prefix: &str, dir: &Path) {
        self.served.lock().unwrap().dirs.push((prefix.to_owned(), dir.to_owned()));
    }

    fn requests(&self, path: &str) -> usize {
        self.served.lock().unwrap().requests.get(path).copied().unwrap_or_default()
    }

    fn bodies(&self, path: &str) -> usize {
        self.served.lock().unwrap().bodies.get(path).copied().unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn respond(mut stream: TcpStream, served: &Mutex<Served>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Dumb-HTTP git asks for `info/refs?service=...` first; without the query it is a plain file.
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let (mut header, mut if_none_match) = (String::new(), None);
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("if-none-match")
        {
            if_none_match = Some(value.trim().to_owned());
        }
        header.clear();
    }
    let mut served = served.lock().unwrap();
    *served.requests.entry(path.clone()).or_default() += 1;
    let file = served.files.get(&path).cloned().map(|file| {
        // Files get an ETag from their contents; a matching If-None-Match is answered 304.
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&file.body, &mut hasher);
        let etag = format!("\"{:x}\"", std::hash::Hasher::finish(&hasher));
        (file, Some(etag))
    });
    let found = file.or_else(|| {
        served.dirs.iter().find_map(|(prefix, dir)| {
            let rest = path.strip_prefix(prefix.as_str())?;
            let body = std::fs::read(dir.join(rest.trim_start_matches('/'))).ok()?;
            Some((Resource { body, last_modified: None }, None))
        })
    });
    let response = match found {
        Some((_, Some(etag))) if if_none_match.as_ref() == Some(&etag) => {
            format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n").into_bytes()
        }
        Some((resource, etag)) => {
            *served.bodies.entry(path.clone()).or_default() += 1;
            let mut head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n", resource.body.len());
            if let Some(date) = &resource.last_modified {
                head.push_str(&format!("Last-Modified: {date}\r\n"));
            }
            if let Some(etag) = etag {
                head.push_str(&format!("ETag: {etag}\r\n"));
            }
            [format!("{head}\r\n").into_bytes(), resource.body].concat()
        }
        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    drop(served);
    let _ = stream.write_all(&response);
}

/// A build directory: a root, a context with a Dockerfile, and the outputs.
struct Build {
    dir: tempfile::TempDir,
    config: Option<PathBuf>,
}

impl Build {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("context")).unwrap();
        Self { dir, config: None }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `strata build` of `dockerfile` with `args`, its filesystem written to `out`.
    fn run(&self, dockerfile: &str, out: &str, args: &[&str]) -> Output {
        std::fs::write(self.path("context/Dockerfile"), dockerfile).unwrap();
        let mut cmd = strata();
        cmd.arg("--root").arg(self.path("root"));
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(["build", "--progress", "plain", "-o"])
            .arg(format!("type=local,dest={}", self.path(out).display()))
            .args(args)
            .arg(self.path("context"));
        cmd.output().unwrap()
    }

    /// Like [`run`](Self::run), and panics with the output unless it succeeds; returns standard error.
    fn ok(&self, dockerfile: &str, out: &str, args: &[&str]) -> String {
        let output = self.run(dockerfile, out, args);
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "build failed:\n{err}");
        err
    }

    /// Like [`run`](Self::run), and panics unless it fails; returns standard error.
    fn fails(&self, dockerfile: &str, args: &[&str]) -> String {
        let output = self.run(dockerfile, "failed", args);
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "build succeeded:\n{err}");
        err
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

/// Whether every step of a build came from the cache.
fn all_cached(err: &str) -> bool {
    err.contains("CACHED") && !err.contains("DONE")
}

#[test]
fn add_from_http_keeps_mode_and_mtime_and_is_cached_until_the_file_changes() {
    if !strata_testkit::require_root("add_from_http_keeps_mode_and_mtime_and_is_cached_until_the_file_changes") {
        return;
    }
    let server = Server::start();
    server.put("/data.txt", "one", Some("Wed, 21 Oct 2015 07:28:00 GMT"));
    server.put("/plain.txt", "plain", None);
    let build = Build::new();
    let dockerfile =
        format!("FROM scratch\nADD {} /data.txt\nADD {} /dir/\n", server.url("/data.txt"), server.url("/plain.txt"));
    build.ok(&dockerfile, "first", &[]);
    assert_eq!(build.read("first/data.txt"), "one");
    let meta = std::fs::metadata(build.path("first/data.txt")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "BuildKit's mode for downloads");
    assert_eq!(meta.mtime(), 1_445_412_480, "the mtime is Last-Modified");
    let plain = std::fs::metadata(build.path("first/dir/plain.txt")).unwrap();
    assert_eq!(plain.modified().unwrap(), UNIX_EPOCH, "no Last-Modified: the epoch");

    assert_eq!(server.bodies("/data.txt"), 1);

    let err = build.ok(&dockerfile, "second", &[]);
    assert!(all_cached(&err), "an unchanged remote file is a cache hit:\n{err}");
    assert_eq!(server.requests("/data.txt"), 2, "the file is revalidated");
    assert_eq!(server.bodies("/data.txt"), 1, "an unchanged ETag is not downloaded again");

    server.put("/data.txt", "two", Some("Thu, 22 Oct 2015 07:28:00 GMT"));
    let err = build.ok(&dockerfile, "third", &[]);
    assert!(err.contains("DONE"), "a changed remote file re-runs what uses it:\n{err}");
    assert_eq!(server.bodies("/data.txt"), 2);
    assert_eq!(build.read("third/data.txt"), "two");
    assert_eq!(build.read("third/dir/plain.txt"), "plain");
}

#[test]
fn add_checksums_pin_downloads_and_http_errors_name_the_url() {
    if !strata_testkit::require_root("add_checksums_pin_downloads_and_http_errors_name_the_url") {
        return;
    }
    let server = Server::start();
    server.put("/pinned.txt", "pinned", None);
    let build = Build::new();
    let digest = format!("sha256:{}", "0".repeat(64));
    let actual = strata_testkit::run(Command::new("sh").arg("-c").arg("printf pinned | sha256sum"));
    let actual = format!("sha256:{}", actual.split_whitespace().next().unwrap());
    let url = server.url("/pinned.txt");

    let pinned = format!("FROM scratch\nADD --checksum={actual} {url} /\n");
    build.ok(&pinned, "pinned", &[]);
    assert_eq!(build.read("pinned/pinned.txt"), "pinned");
    let downloads = server.requests("/pinned.txt");
    let err = build.ok(&pinned, "again", &[]);
    assert!(all_cached(&err), "{err}");
    assert_eq!(server.requests("/pinned.txt"), downloads, "a pinned cache hit downloads nothing");

    let err = build.fails(&format!("FROM scratch\nADD --checksum={digest} {url} /\n"), &[]);
    assert!(err.contains(&format!("digest mismatch for {url}: {actual} (expected: {digest})")), "{err}");

    let missing = server.url("/missing.txt");
    let err = build.fails(&format!("FROM scratch\nADD {missing} /\n"), &[]);
    assert!(err.contains(&format!("{missing}: the server answered 404 Not Found")), "{err}");

    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let refused = format!("http://{closed}/file");
    let err = build.fails(&format!("FROM scratch\nADD {refused} /\n"), &[]);
    assert!(err.contains(&refused) && err.contains("onnection refused"), "{err}");
}

/// Runs git in `dir` with a fixed identity; returns its standard output.
fn git(dir: &Path, args: &[&str]) -> String {
    strata_testkit::run(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
            .args(args),
    )
    .trim()
    .to_owned()
}

/// `git daemon` serving every repository under a directory on a free port; killed on drop.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    fn start(base: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // The daemon itself, not `git daemon`: killing the `git` wrapper would leave the daemon running.
        let exec_path = strata_testkit::run(Command::new("git").arg("--exec-path"));
        let mut child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, port };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("git daemon did not start on port {port}");
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn add_from_git_at_branches_tags_commits_and_subdirs() {
    if !strata_testkit::require_root("add_from_git_at_branches_tags_commits_and_subdirs") {
        return;
    }
    strata_testkit::require_tool("git");
    let build = Build::new();
    let work = build.path("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("a.txt"), "v1").unwrap();
    std::fs::write(work.join("sub/b.txt"), "b").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "-a", "v1", "-m", "first"]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    std::fs::write(work.join("a.txt"), "v2").unwrap();
    git(&work, &["commit", "-q", "-am", "two"]);
    let served = build.path("served");
    std::fs::create_dir(&served).unwrap();
    git(&served, &["clone", "-q", "--bare", work.to_str().unwrap(), "repo.git"]);
    git(&served.join("repo.git"), &["update-server-info"]);
    let daemon = GitDaemon::start(&served);
    let remote = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let http = Server::start();
    http.serve_dir("/repo.git", &served.join("repo.git"));
    let dumb = http.url("/repo.git");

    let dockerfile = format!(
        "FROM scratch\nADD {remote}#main /branch/\nADD {remote}#v1 /tag/\nADD {remote}#{first} /commit/\n\
         ADD {remote}#main:sub /subdir/\nADD --keep-git-dir=true {remote}#main /kept/\nADD {dumb}#v1 /dumb/\n"
    );
    build.ok(&dockerfile, "first", &[]);
    assert_eq!(build.read("first/branch/a.txt"), "v2");
    assert_eq!(build.read("first/tag/a.txt"), "v1");
    assert_eq!(build.read("first/commit/a.txt"), "v1");
    assert_eq!(build.read("first/dumb/a.txt"), "v1", "dumb HTTP, which cannot fetch shallowly");
    assert_eq!(build.read("first/subdir/b.txt"), "b");
    assert!(!build.path("first/subdir/a.txt").exists(), "only the subdirectory is copied");
    assert!(!build.path("first/branch/.git").exists(), ".git is dropped by default");
    assert!(build.path("first/kept/.git/HEAD").is_file(), "--keep-git-dir keeps it");

    let err = build.ok(&dockerfile, "second", &[]);
    assert!(all_cached(&err), "unchanged refs are cache hits:\n{err}");

    std::fs::write(work.join("a.txt"), "v3").unwrap();
    git(&work, &["commit", "-q", "-am", "three"]);
    git(&work, &["push", "-q", served.join("repo.git").to_str().unwrap(), "main"]);
    let err = build.ok(&dockerfile, "third", &[]);
    assert!(err.contains("DONE"), "a new commit re-runs the steps that use the branch:\n{err}");
    assert_eq!(build.read("third/branch/a.txt"), "v3");
    assert_eq!(build.read("third/tag/a.txt"), "v1");

    let err = build.fails(&format!("FROM scratch\nADD {remote}#nope /x/\n"), &[]);
    assert!(err.contains("the repository has no ref \"nope\""), "{err}");
    build.ok(&format!("FROM scratch\nADD --checksum={} {remote}#v1 /pinned/\n", &first[..12]), "pinned", &[]);
    assert_eq!(build.read("pinned/pinned/a.txt"), "v1");
    let err = build.fails(&format!("FROM scratch\nADD --checksum=0000000 {remote}#main /x/\n"), &[]);
    assert!(err.contains("expected checksum to match 0000000, got "), "{err}");
}

#[test]
fn build_contexts_replace_sources_images_and_stages() {
    if !strata_testkit::require_root("build_contexts_replace_sources_images_and_stages") {
        return;
    }
    let mut build = Build::new();
    let (_registry, config) = busybox_mirror(build.dir.path());
    build.config = Some(config);
    let assets = build.path("assets");
    std::fs::create_dir(&assets).unwrap();
    std::fs::write(assets.join("hello.txt"), "hello").unwrap();
    std::fs::write(assets.join("skip.log"), "ignored").unwrap();
    std::fs::write(assets.join(".dockerignore"), "*.log\n").unwrap();
    let assets_flag = format!("assets={}", assets.display());

    let dockerfile = "FROM base\nCOPY --from=assets / /assets/\nRUN cat /assets/hello.txt > /copied\n";
    build.ok(dockerfile, "image", &["--build-context", "base=docker-image://busybox", "--build-context", &assets_flag]);
    assert!(build.path("image/bin/busybox").exists(), "FROM base is busybox");
    assert_eq!(build.read("image/copied"), "hello");
    assert!(!build.path("image/assets/skip.log").exists(), "the context's .dockerignore applies");

    // The stage named like the context is replaced: its failing RUN never runs.
    let replaced = "FROM busybox AS assets\nRUN false\nFROM scratch\nCOPY --from=assets /hello.txt /\n";
    build.ok(replaced, "replaced", &["--build-context", &assets_flag]);
    assert_eq!(build.read("replaced/hello.txt"), "hello");

    // umoci's busybox layout, by tag; then strata's own OCI output, the layout's only image.
    let umoci = build.path("umoci");
    std::fs::create_dir(&umoci).unwrap();
    let layout = strata_testkit::busybox_layout(&umoci);
    let layout_flag = format!("base=oci-layout://{}:latest", layout.display());
    let on_layout = "FROM base\nRUN echo layered > /layered\n";
    build.ok(on_layout, "layout", &["--build-context", &layout_flag]);
    assert_eq!(build.read("layout/layered"), "layered\n");
    let own = build.path("own-layout");
    let mut cmd = strata();
    cmd.arg("--root").arg(build.path("root")).args(["build", "--progress", "quiet", "--build-context", &layout_flag]);
    cmd.arg("-o").arg(format!("type=oci,dest={},tar=false", own.display())).arg(build.path("context"));
    assert!(cmd.output().unwrap().status.success());
    let own_flag = format!("base=oci-layout://{}", own.display());
    build.ok("FROM base\nRUN cat /layered\n", "own", &["--build-context", &own_flag]);
    assert_eq!(build.read("own/layered"), "layered\n");

    let err = build.fails("FROM scratch\n", &["--build-context", "x=/does/not/exist"]);
    assert!(err.contains("--build-context x=/does/not/exist: /does/not/exist is not a directory"), "{err}");
}
