//! Pull and push against a real plain-HTTP registry, and interop with skopeo in both directions.

mod common;

use std::process::Command;

use common::{assert_store_clean, client, layout_manifest_digest, synthetic_image, temp_store};
use serde_json::json;
use strata_registry::{HostConfig, Platform, Reference, RegistryClient, RegistryConfig};
use strata_testkit::skopeo_push_busybox;
use strata_testkit::{Registry, require_tool, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_what_skopeo_pushed_and_verifies_every_digest() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("docker://{}/busybox:latest", registry.addr());
    let layout = skopeo_push_busybox(dir.path(), &dest, &["--dest-tls-verify=false"]);
    let (_store_dir, store) = temp_store();
    let client = client(&registry.addr(), None);
    let reference = Reference::parse(&format!("{}/busybox", registry.addr())).unwrap();
    let image = client.pull(&reference, &store, &Platform::host()).await.unwrap();
    assert_eq!(image.manifest_digest.to_string(), layout_manifest_digest(&layout));
    assert_eq!(image.config.rootfs().diff_ids().len(), 1);
    assert_eq!(image.manifest.layers().len(), 1);
    assert_store_clean(&store);
    assert_eq!(store.walk().unwrap().len(), 3, "manifest, config and one layer");

    // By digest, into a store that has everything: nothing is fetched again and the result is the same.
    let pinned = reference.with_digest(image.manifest_digest.clone());
    let again = client.pull(&pinned, &store, &Platform::host()).await.unwrap();
    assert_eq!(again.config_digest, image.config_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_strata_pushes_skopeo_inspects_and_copies() {
    require_tool("skopeo");
    let source = Registry::start();
    let target = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    skopeo_push_busybox(
        dir.path(),
        &format!("docker://{}/busybox:latest", source.addr()),
        &["--dest-tls-verify=false"],
    );
    let (_store_dir, store) = temp_store();
    let config =
        common::config(&source.addr(), None).with_host(target.addr(), HostConfig { http: true, ..Default::default() });
    let client = RegistryClient::builder().config(config).credentials(common::no_credentials()).build();
    let image = client
        .pull(&Reference::parse(&format!("{}/busybox", source.addr())).unwrap(), &store, &Platform::host())
        .await
        .unwrap();
    let pushed_ref = Reference::parse(&format!("{}/copies/busybox:v1", target.addr())).unwrap();
    let pushed = client.push(&store, &image.manifest_digest, &pushed_ref, None).await.unwrap();
    assert_eq!(pushed, image.manifest_digest);

    let inspect =
        run(Command::new("skopeo").args(["inspect", "--tls-verify=false"]).arg(format!("docker://{pushed_ref}")));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], pushed.to_string(), "{inspect}");
    let copy = dir.path().join("copy");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{pushed_ref}"))
        .arg(format!("oci:{}:v1", copy.display())));
    assert_eq!(layout_manifest_digest(&copy), pushed.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_uploads_skips_and_cross_repository_mounts() {
    let registry = Registry::start();
    let (_store_dir, store) = temp_store();
    let image = synthetic_image(&store, 1, "amd64", &[3 << 20, 5 << 20, 1000]);
    let client = RegistryClient::builder()
        .config(common::config(&registry.addr(), None))
        .credentials(common::no_credentials())
        .chunk_size(1 << 20)
        .build();
    let first = Reference::parse(&format!("{}/team/first:v1", registry.addr())).unwrap();
    assert_eq!(client.push(&store, &image, &first, None).await.unwrap(), image);
    let chunks = registry.log().matches("\"PATCH /v2/team/first/blobs/uploads/").count();
    assert!(chunks >= 8, "expected 1 MiB chunks, saw {chunks} PATCHes:\n{}", registry.log());

    // Pushing again uploads nothing: every blob answers the HEAD.
    client.push(&store, &image, &first, None).await.unwrap();
    assert_eq!(registry.log().matches("\"POST /v2/team/first/blobs/uploads/").count(), 4);

    let second = Reference::parse(&format!("{}/team/second:v1", registry.addr())).unwrap();
    client.push(&store, &image, &second, Some(&first)).await.unwrap();
    let log = registry.log();
    assert_eq!(log.matches("\"POST /v2/team/second/blobs/uploads/?mount=").count(), 4, "{log}");
    assert_eq!(log.matches("\"PATCH /v2/team/second/").count(), 0, "mounted blobs were uploaded:\n{log}");

    let (_pulled_dir, pulled) = temp_store();
    let pulled_image = client.pull(&second, &pulled, &Platform::host()).await.unwrap();
    assert_eq!(pulled_image.manifest_digest, image);
    assert_store_clean(&pulled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_platform_index_pushes_and_pulls_the_wanted_platform() {
    let registry = Registry::start();
    let (_store_dir, store) = temp_store();
    let amd64 = synthetic_image(&store, 2, "amd64", &[4096]);
    let arm64 = synthetic_image(&store, 3, "arm64", &[8192]);
    let entry = |digest: &strata_snapshotter::Digest, arch: &str| {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
            "size": store.size(digest).unwrap(), "platform": {"os": "linux", "architecture": arch}})
    };
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd64, "amd64"), entry(&arm64, "arm64")]});
    let index = store.write_bytes(&serde_json::to_vec(&index).unwrap()).unwrap();
    let client = client(&registry.addr(), None);
    let reference = Reference::parse(&format!("{}/multi:latest", registry.addr())).unwrap();
    assert_eq!(client.push(&store, &index, &reference, None).await.unwrap(), index);

    let (_pulled_dir, pulled) = temp_store();
    let arm = client.pull(&reference, &pulled, &"linux/arm64".parse().unwrap()).await.unwrap();
    assert_eq!((arm.index_digest.as_ref(), &arm.manifest_digest), (Some(&index), &arm64));
    assert_eq!(arm.config.architecture().to_string(), "arm64");
    let err = client.pull(&reference, &pulled, &"linux/s390x".parse().unwrap()).await.unwrap_err().to_string();
    assert!(err.contains("no manifest for platform linux/s390x") && err.contains("multi"), "{err}");
    assert_store_clean(&pulled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_names_pull_through_a_configured_mirror() {
    let mirror = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let layout = skopeo_push_busybox(
        dir.path(),
        &format!("docker://{}/library/busybox:latest", mirror.addr()),
        &["--dest-tls-verify=false"],
    );
    let config = RegistryConfig::default()
        .with_host("docker.io", HostConfig { mirrors: vec![mirror.addr()], ..Default::default() })
        .with_host(mirror.addr(), HostConfig { http: true, ..Default::default() });
    let client = RegistryClient::builder().config(config).credentials(common::no_credentials()).build();
    let (_store_dir, store) = temp_store();
    let image = client.pull(&Reference::parse("busybox").unwrap(), &store, &Platform::host()).await.unwrap();
    assert_eq!(image.manifest_digest.to_string(), layout_manifest_digest(&layout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_registry_repository_and_reference() {
    let registry = Registry::start();
    let (_store_dir, store) = temp_store();
    let client = client(&registry.addr(), None);
    let reference = Reference::parse(&format!("{}/absent/image:nope", registry.addr())).unwrap();
    let err = client.pull(&reference, &store, &Platform::host()).await.unwrap_err().to_string();
    assert!(
        err.contains(&registry.addr()) && err.contains("absent/image") && err.contains("nope") && err.contains("404"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_layers_unpack_to_what_umoci_unpacks() {
    if !strata_testkit::require_root("pulled_layers_unpack_to_what_umoci_unpacks") {
        return;
    }
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let layout = skopeo_push_busybox(
        dir.path(),
        &format!("docker://{}/busybox:latest", registry.addr()),
        &["--dest-tls-verify=false"],
    );
    let (_store_dir, store) = temp_store();
    let reference = Reference::parse(&format!("{}/busybox", registry.addr())).unwrap();
    let image = client(&registry.addr(), None).pull(&reference, &store, &Platform::host()).await.unwrap();

    let ours = dir.path().join("strata-rootfs");
    std::fs::create_dir(&ours).unwrap();
    let snapshot = strata_snapshotter::SnapshotLayout::Full { dir: ours.clone(), parent: None };
    for (layer, diff_id) in image.manifest.layers().iter().zip(image.config.rootfs().diff_ids()) {
        let applied =
            strata_snapshotter::apply_blob(&store, &layer.digest().to_string().parse().unwrap(), &snapshot).unwrap();
        assert_eq!(applied.diff_id.to_string(), *diff_id);
    }
    let theirs = dir.path().join("umoci-rootfs");
    run(Command::new("umoci")
        .args(["raw", "unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&theirs));
    let listing = |root: &std::path::Path| {
        run(Command::new("sh").arg("-c").arg("find . -printf '%P %y %m %U:%G %s %l\\n' | sort").current_dir(root))
    };
    assert_eq!(listing(&ours), listing(&theirs));
    run(Command::new("diff").args(["-r", "--no-dereference"]).arg(&ours).arg(&theirs));
}
