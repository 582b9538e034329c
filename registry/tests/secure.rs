//! TLS with a CA made here, htpasswd Basic auth over TLS, and Bearer tokens from a test issuer.

mod common;

use std::process::Command;
use std::time::Duration;

use common::issuer::{ISSUER, IssuerOptions, SERVICE, TokenIssuer};
use common::{assert_store_clean, layout_manifest_digest, make_tls, temp_store};
use strata_registry::{CredentialStore, Credentials, Platform, Reference, RegistryClient};
use strata_testkit::skopeo_push_busybox;
use strata_testkit::{Registry, RegistryAuth, RegistryOptions, require_tool, run};

fn client_with(registry: &str, ca: Option<&std::path::Path>, credentials: CredentialStore) -> RegistryClient {
    RegistryClient::builder().config(common::config(registry, ca)).credentials(credentials).build()
}

/// Pulls what skopeo pushed, pushes it to a second repository (mounting it), and pulls that back.
async fn round_trip(client: &RegistryClient, registry: &Registry, layout: &std::path::Path) {
    let (_dir, store) = temp_store();
    let source = Reference::parse(&format!("{}/busybox:latest", registry.addr())).unwrap();
    let image = client.pull(&source, &store, &Platform::host()).await.unwrap();
    assert_eq!(image.manifest_digest.to_string(), layout_manifest_digest(layout));
    let target = Reference::parse(&format!("{}/pushed/busybox:v2", registry.addr())).unwrap();
    assert_eq!(
        client.push(&store, &image.manifest_digest, &target, Some(&source)).await.unwrap(),
        image.manifest_digest
    );
    let (_dir2, again) = temp_store();
    assert_eq!(client.pull(&target, &again, &Platform::host()).await.unwrap().manifest_digest, image.manifest_digest);
    assert_store_clean(&again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_an_extra_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_tls(dir.path());
    let registry = Registry::start_with(RegistryOptions { tls: Some((cert, key)), auth: RegistryAuth::None });
    let dest = format!("docker://{}/busybox:latest", registry.addr());
    let layout = skopeo_push_busybox(dir.path(), &dest, &["--dest-tls-verify=false"]);
    round_trip(&client_with(&registry.addr(), Some(&ca), common::no_credentials()), &registry, &layout).await;

    // Without the CA the certificate is not trusted, and the error says where.
    let (_store_dir, store) = temp_store();
    let untrusting = RegistryClient::builder().credentials(common::no_credentials()).build();
    let reference = Reference::parse(&format!("{}/busybox", registry.addr())).unwrap();
    let err = untrusting.pull(&reference, &store, &Platform::host()).await.unwrap_err();
    assert!(err.to_string().contains(&registry.addr()), "{err}");

    // `insecure = true` skips verification altogether.
    let insecure = strata_registry::HostConfig { insecure: true, ..Default::default() };
    let config = strata_registry::RegistryConfig::default().with_host(registry.addr(), insecure);
    let trusting = RegistryClient::builder().config(config).credentials(common::no_credentials()).build();
    trusting.pull(&reference, &store, &Platform::host()).await.unwrap();
    assert_store_clean(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth_over_tls_and_login() {
    require_tool("htpasswd");
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_tls(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, run(Command::new("htpasswd").args(["-Bbn", "alice", "s3cret"]))).unwrap();
    let registry =
        Registry::start_with(RegistryOptions { tls: Some((cert, key)), auth: RegistryAuth::Htpasswd(htpasswd) });
    let dest = format!("docker://{}/busybox:latest", registry.addr());
    let layout = skopeo_push_busybox(dir.path(), &dest, &["--dest-tls-verify=false", "--dest-creds", "alice:s3cret"]);

    // Login checks the password before saving it; the saved file then serves every later client.
    let docker_config = dir.path().join("docker/config.json");
    let wrong = CredentialStore::with_docker_config(&docker_config)
        .with_credentials(registry.addr(), Credentials::new("alice", "wrong"));
    let err = client_with(&registry.addr(), Some(&ca), wrong).verify_login(&registry.addr()).await.unwrap_err();
    assert!(matches!(err, strata_registry::Error::Auth { .. }), "{err}");
    let right = CredentialStore::with_docker_config(&docker_config)
        .with_credentials(registry.addr(), Credentials::new("alice", "s3cret"));
    client_with(&registry.addr(), Some(&ca), right).verify_login(&registry.addr()).await.unwrap();
    CredentialStore::with_docker_config(&docker_config)
        .save(&registry.addr(), &Credentials::new("alice", "s3cret"))
        .unwrap();

    let client = client_with(&registry.addr(), Some(&ca), CredentialStore::with_docker_config(&docker_config));
    round_trip(&client, &registry, &layout).await;

    let (_store_dir, store) = temp_store();
    let reference = Reference::parse(&format!("{}/busybox", registry.addr())).unwrap();
    let anonymous = client_with(&registry.addr(), Some(&ca), common::no_credentials());
    let err = anonymous.pull(&reference, &store, &Platform::host()).await.unwrap_err();
    assert!(matches!(err, strata_registry::Error::Auth { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_from_an_issuer_and_renewal_after_a_mid_operation_401() {
    let dir = tempfile::tempdir().unwrap();
    // The issuer claims tokens last a minute but the registry rejects them after three seconds: the client must
    // notice the 401 and fetch a new token by itself.
    let issuer = TokenIssuer::start(
        dir.path(),
        IssuerOptions { credentials: "bob:hunter2".into(), lifetime: 3, claimed_expires_in: 60 },
    );
    let registry = Registry::start_with(RegistryOptions {
        tls: None,
        auth: RegistryAuth::Token {
            realm: issuer.realm.clone(),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            root_cert_bundle: issuer.root_cert_bundle.clone(),
        },
    });
    let dest = format!("docker://{}/busybox:latest", registry.addr());
    let layout = skopeo_push_busybox(dir.path(), &dest, &["--dest-tls-verify=false", "--dest-creds", "bob:hunter2"]);
    let credentials = common::no_credentials().with_credentials(registry.addr(), Credentials::new("bob", "hunter2"));
    let client = client_with(&registry.addr(), None, credentials);
    client.verify_login(&registry.addr()).await.unwrap();
    round_trip(&client, &registry, &layout).await;

    let before = issuer.issued();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_store_dir, store) = temp_store();
    let reference = Reference::parse(&format!("{}/busybox", registry.addr())).unwrap();
    client.pull(&reference, &store, &Platform::host()).await.unwrap();
    assert!(issuer.issued() > before, "the expired token was not renewed");

    let wrong = common::no_credentials().with_credentials(registry.addr(), Credentials::new("bob", "nope"));
    let err = client_with(&registry.addr(), None, wrong).pull(&reference, &store, &Platform::host()).await.unwrap_err();
    assert!(err.to_string().contains("token issuer") && err.to_string().contains("401"), "{err}");
}
