//! A token issuer for the registry's `auth: token` mode: a tiny HTTP server that checks Basic credentials and
//! hands out ES256 JWTs carrying the signing certificate in `x5c`, which distribution verifies against the
//! `rootcertbundle` it was given.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

/// The `service` the registry and the issuer agree on.
pub const SERVICE: &str = "strata-test-registry";
/// The `iss` claim the registry expects.
pub const ISSUER: &str = "strata-test-issuer";

/// Distribution accepts tokens this long past their `exp` (clock skew leeway), so `exp` is set that much earlier.
const REGISTRY_LEEWAY: u64 = 60;

/// A running issuer; its thread serves until the test process exits.
pub struct TokenIssuer {
    /// The token endpoint, the registry's `realm`.
    pub realm: String,
    /// PEM of the signing certificate, the registry's `rootcertbundle`.
    pub root_cert_bundle: PathBuf,
    issued: Arc<AtomicUsize>,
}

/// What the issuer does.
pub struct IssuerOptions {
    /// `user:password` accepted in Basic auth; other requests get 401.
    pub credentials: String,
    /// Seconds the registry accepts a token for (its `exp`).
    pub lifetime: u64,
    /// What the issuer claims in `expires_in`; larger than `lifetime` to provoke a 401 mid-operation.
    pub claimed_expires_in: u64,
}

impl TokenIssuer {
    /// Starts the issuer on 127.0.0.1 with a new signing key whose certificate is written under `dir`.
    pub fn start(dir: &Path, options: IssuerOptions) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "strata test token signer");
        let cert = params.self_signed(&key).unwrap();
        let root_cert_bundle = dir.join("token-signer.pem");
        std::fs::write(&root_cert_bundle, cert.pem()).unwrap();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &SystemRandom::new())
                .unwrap();
        let x5c = STANDARD.encode(cert.der());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = issued.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let mut authorization = None;
                reader.read_line(&mut request_line).unwrap_or_default();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(value.trim().to_owned());
                    }
                }
                let expected = format!("Basic {}", STANDARD.encode(&options.credentials));
                let response = if authorization.as_deref() == Some(expected.as_str()) {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                    let token = sign(&signer, &x5c, path, &options);
                    let body = json!({"token": token, "expires_in": options.claimed_expires_in}).to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                };
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Self { realm, root_cert_bundle, issued }
    }

    /// How many tokens were handed out.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

/// A JWT granting every scope asked for in the request's query.
fn sign(signer: &EcdsaKeyPair, x5c: &str, path: &str, options: &IssuerOptions) -> String {
    let query = url::Url::parse(&format!("http://issuer{path}")).unwrap();
    let access: Vec<_> = query
        .query_pairs()
        .filter(|(k, _)| k == "scope")
        .filter_map(|(_, scope)| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?.to_owned(), parts.next()?.to_owned(), parts.next()?.to_owned());
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let user = options.credentials.split(':').next().unwrap();
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
    let claims = json!({"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + options.lifetime - REGISTRY_LEEWAY,
        "nbf": now - 5, "iat": now, "jti": format!("{now}-{}", rand::random::<u64>()), "access": access});
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = signer.sign(&SystemRandom::new(), signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}
