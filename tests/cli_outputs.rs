//! `strata build -o`: the filesystem tar, OCI and Docker outputs read by real peers (skopeo, umoci, podman, GNU
//! tar), layer compression and media types, a zstd image through a real registry, and `--metadata-file`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{busybox_mirror, strata};
use strata_testkit::{Registry, require_root, require_tool, run};

mod common;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A build directory: busybox behind a registry mirror, a context with a Dockerfile, and a strata root.
struct Fixture {
    dir: tempfile::TempDir,
    registry: Registry,
    config: PathBuf,
}

impl Fixture {
    /// Writes `dockerfile` into a fresh context.
    fn new(dockerfile: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (registry, config) = busybox_mirror(dir.path());
        fs::create_dir(dir.path().join("context")).unwrap();
        fs::write(dir.path().join("context/Dockerfile"), dockerfile).unwrap();
        Self { dir, registry, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `strata --root ROOT --config CONFIG ARGS`, rooted at `root` under the fixture.
    fn strata(&self, root: &str, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = strata();
        cmd.arg("--root").arg(self.path(root)).arg("--config").arg(&self.config).args(args);
        cmd
    }

    /// `strata build --progress quiet ARGS CONTEXT`; panics with stderr unless it succeeds; returns stdout.
    fn build(&self, args: &[&str]) -> Vec<u8> {
        let out = self
            .strata("root", &["build", "--progress", "quiet"])
            .args(args)
            .arg(self.path("context"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "strata build {args:?} failed:\n{err}\nregistry log:\n{}", self.registry.log());
        out.stdout
    }
}

/// Reads a JSON file.
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))).unwrap()
}

/// An OCI layout's only image manifest, from `index.json`.
fn layout_manifest(layout: &Path) -> serde_json::Value {
    let index = json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    json(&layout.join("blobs/sha256").join(digest))
}

/// The layer media types of a manifest.
fn layer_types(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap().to_owned()).collect()
}

/// Unpacks a tar file into a new directory `dir` with GNU tar.
fn untar(tarball: &Path, dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    run(Command::new("tar").arg("-xf").arg(tarball).arg("-C").arg(dir));
}

#[test]
fn tar_output_streams_the_filesystem_to_a_file_and_to_stdout() {
    if !require_root("tar_output_streams_the_filesystem_to_a_file_and_to_stdout") {
        return;
    }
    let fx = Fixture::new("FROM busybox\nRUN echo hi > /hello && rm /bin/ls\n");
    let file = fx.path("fs.tar");
    let metadata = fx.path("tar.json");
    fx.build(&["-o", &format!("type=tar,dest={}", file.display()), "--metadata-file", metadata.to_str().unwrap()]);
    assert_eq!(json(&metadata), serde_json::json!({}), "a filesystem output makes no image");
    let stdout = fx.build(&["-o", "type=tar,dest=-"]);
    assert_eq!(stdout, fs::read(&file).unwrap(), "dest=- streams the same tar to standard output");
    let listing = run(Command::new("tar").arg("-tf").arg(&file));
    let names: Vec<&str> = listing.lines().collect();
    assert!(names.contains(&"hello") && names.contains(&"bin/busybox"), "{listing}");
    assert!(!names.contains(&"bin/ls"), "the RUN's deletion is gone from the tree: {listing}");
    assert!(!listing.contains(".wh."), "a filesystem tar has no whiteouts: {listing}");
    let tree = fx.path("tree");
    untar(&file, &tree);
    assert_eq!(fs::read_to_string(tree.join("hello")).unwrap(), "hi\n");
    assert_eq!(run(Command::new(tree.join("bin/busybox")).args(["echo", "runs"])), "runs\n");
}

#[test]
fn oci_outputs_pass_skopeo_and_umoci_in_every_compression() {
    if !require_root("oci_outputs_pass_skopeo_and_umoci_in_every_compression") {
        return;
    }
    require_tool("umoci");
    let fx = Fixture::new("FROM busybox\nRUN echo oci > /greeting\n");
    let cases = [
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("uncompressed", "application/vnd.oci.image.layer.v1.tar"),
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
    ];
    for (compression, layer_type) in cases {
        let dir = fx.path(&format!("{compression}-dir"));
        let file = fx.path(&format!("{compression}.tar"));
        let metadata = fx.path(&format!("{compression}.json"));
        let spec = |dest: &Path, tar| format!("type=oci,dest={},tar={tar},compression={compression}", dest.display());
        let (dir_spec, file_spec) = (spec(&dir, false), spec(&file, true));
        let metadata_arg = metadata.to_str().unwrap();
        fx.build(&["-t", "example.com/out:v1", "-o", &dir_spec, "-o", &file_spec, "--metadata-file", metadata_arg]);
        let manifest = layout_manifest(&dir);
        assert_eq!(manifest["mediaType"], OCI_MANIFEST, "type=oci defaults to OCI media types");
        assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
        let types = layer_types(&manifest);
        assert_eq!(types[1], layer_type, "the new layer is {compression}");
        assert_eq!(types[0], "application/vnd.oci.image.layer.v1.tar+gzip", "busybox's layer is reused as it is");
        let new_layer = manifest["layers"][1]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
        let head = fs::read(dir.join("blobs/sha256").join(new_layer)).unwrap()[..4].to_vec();
        assert_eq!(head == ZSTD_MAGIC, compression == "zstd", "the blob is compressed as its media type says");

        let metadata = json(&metadata);
        let index = json(&dir.join("index.json"));
        assert_eq!(metadata["containerimage.digest"], index["manifests"][0]["digest"], "{metadata}");
        assert_eq!(metadata["containerimage.config.digest"], manifest["config"]["digest"], "{metadata}");
        assert_eq!(metadata["containerimage.descriptor"]["mediaType"], OCI_MANIFEST, "{metadata}");
        assert_eq!(metadata["containerimage.descriptor"]["size"], index["manifests"][0]["size"], "{metadata}");
        assert_eq!(metadata["image.name"], "example.com/out:v1", "{metadata}");

        for source in [format!("oci:{}:v1", dir.display()), format!("oci-archive:{}", file.display())] {
            let inspected: serde_json::Value =
                serde_json::from_str(&run(Command::new("skopeo").arg("inspect").arg(&source))).unwrap();
            assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2, "{source}: {inspected}");
        }
        if compression == "zstd" {
            // umoci 0.4.7 (Debian 12) fails to unpack zstd layers; podman runs them in the docker output test.
            continue;
        }
        let unpacked = fx.path(&format!("{compression}-tar-layout"));
        untar(&file, &unpacked);
        for layout in [&dir, &unpacked] {
            let bundle = fx.path(&format!("bundle-{compression}-{}", layout.file_name().unwrap().to_string_lossy()));
            run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:v1", layout.display())).arg(&bundle));
            assert_eq!(fs::read_to_string(bundle.join("rootfs/greeting")).unwrap(), "oci\n", "{}", layout.display());
        }
    }
}

#[test]
fn docker_output_loads_in_podman_and_runs() {
    if !require_root("docker_output_loads_in_podman_and_runs") {
        return;
    }
    require_tool("podman");
    let fx = Fixture::new("FROM busybox\nRUN echo made by strata > /greeting\nCMD [\"cat\", \"/greeting\"]\n");
    let podman = Podman::new(&fx.path("podman"));
    for (compression, tag) in [("gzip", "docker-gzip"), ("zstd", "docker-zstd")] {
        let file = fx.path(&format!("{tag}.tar"));
        let name = format!("localhost/strata/{tag}:v1");
        fx.build(&["-t", &name, "-o", &format!("type=docker,dest={},compression={compression}", file.display())]);
        let layout = fx.path(tag);
        untar(&file, &layout);
        let manifest = layout_manifest(&layout);
        let types = layer_types(&manifest);
        if compression == "gzip" {
            assert_eq!(manifest["mediaType"], DOCKER_MANIFEST, "type=docker defaults to Docker media types");
            assert_eq!(manifest["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
            assert!(types.iter().all(|t| t == "application/vnd.docker.image.rootfs.diff.tar.gzip"), "{types:?}");
        } else {
            assert_eq!(manifest["mediaType"], OCI_MANIFEST, "zstd switches to OCI media types, as in BuildKit");
            assert_eq!(types[1], "application/vnd.oci.image.layer.v1.tar+zstd");
            assert_eq!(types[0], "application/vnd.oci.image.layer.v1.tar+gzip", "the base layer is not forced");
        }
        let loaded = podman.run(&["load", "-i", file.to_str().unwrap()]);
        assert!(loaded.contains(&name), "{loaded}");
        assert_eq!(podman.run(&["run", "--rm", "--network", "none", &name]), "made by strata\n", "{compression}");
    }
    // `dest=-` streams the tarball to standard output, as in `buildx build -o type=docker,dest=- | docker load`.
    let streamed = fx.path("streamed.tar");
    fs::write(&streamed, fx.build(&["-t", "localhost/strata/streamed:v1", "-o", "type=docker,dest=-"])).unwrap();
    let loaded = podman.run(&["load", "-i", streamed.to_str().unwrap()]);
    assert!(loaded.contains("localhost/strata/streamed:v1"), "{loaded}");
}

#[test]
fn a_zstd_image_pushed_to_a_registry_pulls_back_with_strata_and_skopeo() {
    if !require_root("a_zstd_image_pushed_to_a_registry_pulls_back_with_strata_and_skopeo") {
        return;
    }
    let fx = Fixture::new("FROM busybox\nRUN echo zstd inside > /greeting\nCMD [\"cat\", \"/greeting\"]\n");
    // A gzip export first: its layer is cached, and the zstd export must not reuse that blob.
    let gzip = fx.path("gzip");
    fx.build(&["-o", &format!("type=oci,dest={},tar=false", gzip.display())]);
    let gzip_layers = layout_manifest(&gzip)["layers"].clone();

    let image = format!("{}/demo/zstd:v1", fx.registry.addr());
    let metadata = fx.path("zstd.json");
    let spec = format!("type=registry,name={image},compression=zstd,compression-level=19,force-compression=true");
    fx.build(&["-o", &spec, "--metadata-file", metadata.to_str().unwrap()]);
    let raw =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{image}")));
    let pushed: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(pushed["mediaType"], OCI_MANIFEST, "{pushed}");
    let types = layer_types(&pushed);
    assert!(types.iter().all(|t| t == "application/vnd.oci.image.layer.v1.tar+zstd"), "forced: {types:?}");
    for (zstd, gzip) in pushed["layers"].as_array().unwrap().iter().zip(gzip_layers.as_array().unwrap()) {
        assert_ne!(zstd["digest"], gzip["digest"], "a zstd export reuses no gzip blob");
    }
    let metadata = json(&metadata);
    assert_eq!(metadata["image.name"], image.as_str());
    let digest = metadata["containerimage.digest"].as_str().unwrap();

    // strata pulls it into an empty root and runs it.
    fx.strata("fresh", &["pull", &image]).assert().success();
    let out = fx.strata("fresh", &["run", "--rm", &image]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "zstd inside\n", "{}", String::from_utf8_lossy(&out.stderr));

    // skopeo copies it out unchanged: the same manifest, and zstd blobs that hash to their digests.
    let copied = fx.path("copied");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("oci:{}:v1", copied.display())));
    let index = json(&copied.join("index.json"));
    assert_eq!(index["manifests"][0]["digest"], digest, "skopeo copied the manifest byte for byte");
    for layer in pushed["layers"].as_array().unwrap() {
        let blob = copied.join("blobs/sha256").join(layer["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        assert_eq!(fs::read(&blob).unwrap()[..4], ZSTD_MAGIC, "{}", blob.display());
    }
}

#[test]
fn bad_output_fields_fail_before_building_and_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = strata()
        .arg("--root")
        .arg(dir.path().join("root"))
        .args(["build", "-o", "type=oci,dest=o.tar,compression=lz4"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--output type=oci,dest=o.tar,compression=lz4: compression=lz4 is not supported (gzip, zstd or uncompressed)"),
        "{err}"
    );
}

/// podman 4.3 with a private store and `containers.conf` under a directory, set for machines like this one
/// (`/work/shared/tools/README.md`): runc (crun refuses the cgroup v1 hybrid layout), cgroupfs, file events, and
/// rlimits within the hard limits (podman's default nofile=1048576 fails without CAP_SYS_RESOURCE).
struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir).unwrap();
        let hard = |resource| {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: getrlimit writes only into `limit`.
            assert_eq!(unsafe { libc::getrlimit(resource, &mut limit) }, 0);
            limit.rlim_max
        };
        let nofile = hard(libc::RLIMIT_NOFILE).min(1 << 20);
        // podman caps its own nproc at 32768, so a container cannot ask for more.
        let nproc = hard(libc::RLIMIT_NPROC).min(32768);
        // Runtime state and network configuration stay under `dir` too, not in /run/libpod or /etc/cni.
        let conf = format!(
            "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             tmp_dir = \"{tmp}\"\n\n[network]\nnetwork_config_dir = \"{net}\"\n\n[containers]\n\
             default_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n",
            tmp = dir.join("tmp").display(),
            net = dir.join("net").display(),
        );
        fs::write(dir.join("containers.conf"), conf).unwrap();
        Self { dir: dir.to_owned() }
    }

    /// Runs `podman ARGS` against the private store; panics with stderr unless it succeeds; returns stdout.
    fn run(&self, args: &[&str]) -> String {
        run(Command::new("podman")
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["--storage-driver", "vfs"])
            .args(args))
    }
}

#[test]
fn source_date_epoch_makes_clean_builds_byte_identical() {
    if !strata_testkit::require_root("source_date_epoch_makes_clean_builds_byte_identical") {
        return;
    }
    let registry = common::BusyboxRegistry::start();
    let context = registry.dir.path().join("epoch-context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("data.txt"), "data").unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY data.txt /\nRUN echo built > /built-at && mkdir /made\nCMD [\"cat\", \"/data.txt\"]\n",
            registry.image
        ),
    )
    .unwrap();
    // Each build in a fresh root, a second apart, so only the epoch can make them equal.
    let build = |name: &str, epoch_env: Option<&str>, epoch_arg: Option<&str>| {
        let out = registry.dir.path().join(name);
        let mut cmd = common::strata();
        cmd.arg("--root").arg(registry.dir.path().join(format!("root-{name}")));
        cmd.arg("--config").arg(registry.dir.path().join("strata.toml"));
        cmd.args(["build", "--progress", "quiet", "-o"]).arg(format!("type=oci,dest={},tar=false", out.display()));
        if let Some(epoch) = epoch_arg {
            cmd.args(["--build-arg", &format!("SOURCE_DATE_EPOCH={epoch}")]);
        }
        match epoch_env {
            Some(epoch) => cmd.env("SOURCE_DATE_EPOCH", epoch),
            None => cmd.env_remove("SOURCE_DATE_EPOCH"),
        };
        cmd.arg(&context).assert().success();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::read_to_string(out.join("index.json")).unwrap()
    };
    let first = build("env-1", Some("1700000000"), None);
    assert_eq!(build("env-2", Some("1700000000"), None), first, "the same epoch from the environment");
    assert_eq!(build("arg", None, Some("1700000000")), first, "the same epoch as a build arg");
    assert_ne!(build("unset", None, None), first, "without an epoch, times differ");
    let manifest: serde_json::Value = serde_json::from_str(&first).unwrap();
    let digest = manifest["manifests"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_owned();
    let layout = registry.dir.path().join("env-1");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&digest)).unwrap()).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_owned();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(config)).unwrap()).unwrap();
    assert_eq!(config["created"], "2023-11-14T22:13:20Z", "{config}");
}
