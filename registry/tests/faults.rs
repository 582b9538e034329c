//! Pull and push through a proxy that breaks a fixed share of connections: everything still finishes,
//! every digest verifies, and the content store holds no partial blob.

mod common;

use std::process::Command;
use std::time::Duration;

use common::proxy::FaultyProxy;
use common::{assert_store_clean, fast_retries, synthetic_image, temp_store};
use strata_registry::{Platform, Reference, RegistryClient};
use strata_testkit::{Registry, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_survive_resets_500s_truncation_and_stalls() {
    let mut faults = 0;
    for seed in [0x5eed, 1, 2, 3] {
        faults += push_and_pull_through_faults(seed).await;
    }
    eprintln!("faults injected: {faults}");
    assert!(faults >= 12, "only {faults} faults injected over four seeds");
}

/// One push and pull through a proxy seeded with `seed`; returns how many faults it injected.
async fn push_and_pull_through_faults(seed: u64) -> usize {
    let registry = Registry::start();
    let proxy = FaultyProxy::start(registry.addr(), seed, 0.2, 40).await;
    let client = RegistryClient::builder()
        .config(common::config(&proxy.addr, None))
        .credentials(common::no_credentials())
        .retry(fast_retries())
        .read_timeout(Duration::from_secs(1))
        .chunk_size(1 << 20)
        .max_concurrent_transfers(3)
        .build();
    let (_source_dir, source) = temp_store();
    let image = synthetic_image(&source, 4, "amd64", &[4 << 20, 3 << 20, 2 << 20, 600 << 10, 300]);
    let reference = Reference::parse(&format!("{}/faulty/image:v1", proxy.addr)).unwrap();
    assert_eq!(client.push(&source, &image, &reference, None).await.unwrap(), image);

    let (_pulled_dir, pulled) = temp_store();
    let pulled_image = client.pull(&reference, &pulled, &Platform::host()).await.unwrap();
    assert_eq!(pulled_image.manifest_digest, image);
    assert_eq!(pulled.walk().unwrap(), source.walk().unwrap(), "the pulled store differs from the pushed one");
    assert_store_clean(&pulled);

    // The registry, asked directly, serves what was pushed.
    let direct = format!("docker://{}/faulty/image:v1", registry.addr());
    let inspect = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--raw"]).arg(direct));
    assert_eq!(strata_snapshotter::Digest::of(inspect.as_bytes()), image);
    proxy.faults()
}
