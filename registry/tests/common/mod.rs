//! Shared by the integration tests: clients for test registries, images made by other tools or from random
//! bytes, a CA, a token issuer, and the checks that a content store holds only whole, verified blobs.

#![allow(dead_code)] // Each test binary uses its own subset.

pub mod issuer;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};
use serde_json::json;
use strata_registry::{HostConfig, RegistryClient, RegistryConfig, RetryPolicy};
use strata_snapshotter::{ContentStore, Digest};

/// A client for `host` over plain HTTP, or HTTPS trusting `ca`.
pub fn client(host: &str, ca: Option<&Path>) -> RegistryClient {
    RegistryClient::builder().config(config(host, ca)).credentials(no_credentials()).build()
}

/// The registry config for one test host.
pub fn config(host: &str, ca: Option<&Path>) -> RegistryConfig {
    let settings = match ca {
        Some(ca) => HostConfig { ca: vec![ca.to_owned()], ..HostConfig::default() },
        None => HostConfig { http: true, ..HostConfig::default() },
    };
    RegistryConfig::default().with_host(host, settings)
}

/// A credential store that knows nothing (and never reads the user's files).
pub fn no_credentials() -> strata_registry::CredentialStore {
    strata_registry::CredentialStore::with_docker_config("/nonexistent/strata-test/config.json")
}

/// Quick retries, so fault tests finish fast.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy { max_attempts: 8, initial_backoff: Duration::from_millis(20), max_backoff: Duration::from_millis(300) }
}

/// Asserts the store has no temp files and every blob hashes to its name.
pub fn assert_store_clean(store: &ContentStore) {
    let ingest: Vec<_> = std::fs::read_dir(store.root().join("ingest")).unwrap().collect();
    assert!(ingest.is_empty(), "leftover ingests: {ingest:?}");
    for (digest, _) in store.walk().unwrap() {
        store.verify(&digest).unwrap_or_else(|e| panic!("{digest}: {e}"));
    }
}

/// Writes an image of random layers (sizes in bytes) for `architecture` into `store`; returns its manifest digest.
pub fn synthetic_image(store: &ContentStore, seed: u64, architecture: &str, layer_sizes: &[usize]) -> Digest {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut layers = Vec::new();
    for &size in layer_sizes {
        let mut bytes = vec![0u8; size];
        rng.fill(bytes.as_mut_slice());
        let digest = store.write_bytes(&bytes).unwrap();
        layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}));
    }
    let diff_ids: Vec<_> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = json!({"architecture": architecture, "os": "linux", "config": {"Env": [format!("SEED={seed}")]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = store.write_bytes(&config).unwrap();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers});
    store.write_bytes(&serde_json::to_vec(&manifest).unwrap()).unwrap()
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files: `(ca, cert, key)`.
pub fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "strata test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let paths = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server-key.pem"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, server.pem()).unwrap();
    std::fs::write(&paths.2, server_key.serialize_pem()).unwrap();
    paths
}

/// A fresh content store in a temp dir.
pub fn temp_store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    (dir, store)
}

/// The manifest digest an OCI layout's index.json names for `tag`.
pub fn layout_manifest_digest(layout: &Path) -> String {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}
