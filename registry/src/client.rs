//! [`RegistryClient`]: the distribution API requests every operation is made of, sent with auth and retries.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use strata_snapshotter::Digest;

use crate::auth::{Authenticator, Authorization, Challenge, Scope};
use crate::config::RegistryConfig;
use crate::credentials::CredentialStore;
use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_ACCEPT, MAX_MANIFEST_SIZE};
use crate::transport::{Endpoint, RetryPolicy, Transport, is_transient, is_transient_error, retry_after};

/// Talks the OCI distribution API to any number of registries, sharing auth tokens and HTTP connections.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    credentials: CredentialStore,
    authenticator: Authenticator,
    retry: RetryPolicy,
    max_concurrent_transfers: usize,
    chunk_size: u64,
}

/// Configures a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct RegistryClientBuilder {
    config: RegistryConfig,
    credentials: Option<CredentialStore>,
    retry: RetryPolicy,
    max_concurrent_transfers: usize,
    chunk_size: u64,
    read_timeout: Duration,
}

impl Default for RegistryClientBuilder {
    fn default() -> Self {
        Self {
            config: RegistryConfig::default(),
            credentials: None,
            retry: RetryPolicy::default(),
            max_concurrent_transfers: 4,
            chunk_size: 64 << 20,
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl RegistryClientBuilder {
    /// Per-registry settings: mirrors, plain HTTP, extra CAs, no verification.
    pub fn config(mut self, config: RegistryConfig) -> Self {
        self.config = config;
        self
    }

    /// Where credentials come from; Docker's and Podman's files by default.
    pub fn credentials(mut self, credentials: CredentialStore) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// How failed requests are retried.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How many blobs are downloaded or uploaded at once.
    pub fn max_concurrent_transfers(mut self, n: usize) -> Self {
        self.max_concurrent_transfers = n.max(1);
        self
    }

    /// Blobs up to this size are uploaded in one PUT; bigger ones in PATCH chunks of this size.
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// How long a connection may stay silent mid-response before the request counts as failed.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Builds the client.
    pub fn build(self) -> RegistryClient {
        RegistryClient {
            inner: Arc::new(Inner {
                transport: Transport::new(self.config, self.read_timeout),
                credentials: self.credentials.unwrap_or_else(CredentialStore::from_env),
                authenticator: Authenticator::default(),
                retry: self.retry,
                max_concurrent_transfers: self.max_concurrent_transfers,
                chunk_size: self.chunk_size,
            }),
        }
    }
}

/// One repository on one endpoint (the registry itself or a mirror): where requests go and with what access.
#[derive(Debug, Clone)]
pub(crate) struct Repository {
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) name: String,
    pub(crate) scope: Scope,
}

impl Repository {
    /// `base/v2/NAME/PATH`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.endpoint.base, self.name)
    }

    /// Resolves a `Location` header, which registries may send relative to the host.
    pub(crate) fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.endpoint.base)
        }
    }

    /// An error about content of this repository.
    pub(crate) fn verification_error(&self, digest: &Digest, reason: impl Into<String>) -> Error {
        Error::Verification {
            registry: self.endpoint.host.clone(),
            repository: self.name.clone(),
            digest: digest.to_string(),
            reason: reason.into(),
        }
    }
}

/// A manifest as the registry sent it, already checked against its digest.
#[derive(Debug)]
pub(crate) struct FetchedManifest {
    pub(crate) bytes: Vec<u8>,
    pub(crate) digest: Digest,
    pub(crate) content_type: Option<String>,
}

impl RegistryClient {
    /// A builder with default settings.
    pub fn builder() -> RegistryClientBuilder {
        RegistryClientBuilder::default()
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    pub(crate) fn max_concurrent_transfers(&self) -> usize {
        self.inner.max_concurrent_transfers
    }

    pub(crate) fn chunk_size(&self) -> u64 {
        self.inner.chunk_size
    }

    pub(crate) fn config(&self) -> &RegistryConfig {
        self.inner.transport.config()
    }

    /// `name` on the registry (or mirror) at `host`, to be accessed with `scope`.
    pub(crate) fn repository(&self, host: &str, name: &str, scope: Scope) -> Result<Repository> {
        Ok(Repository { endpoint: self.inner.transport.endpoint(host)?, name: name.to_owned(), scope })
    }

    /// Checks that the credentials the store holds for `registry` are accepted, as `docker login` does.
    pub async fn verify_login(&self, registry: &str) -> Result<()> {
        let host = crate::Reference::parse(&format!("{registry}/probe"))?.api_host().to_owned();
        let endpoint = self.inner.transport.endpoint(&host)?;
        let url = format!("{}/v2/", endpoint.base);
        let response = self.send(&endpoint, &Scope::registry(), Method::GET, &url, Ok).await?;
        expect(response, &[StatusCode::OK]).await.map(drop)
    }

    /// Sends a request built by `build` (called again for every try, since a streamed body goes only once),
    /// answering auth challenges and retrying transient failures with backoff.
    pub(crate) async fn send(
        &self,
        endpoint: &Endpoint,
        scope: &Scope,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> Result<RequestBuilder>,
    ) -> Result<Response> {
        let retry = &self.inner.retry;
        let credentials = self.inner.credentials.get(&endpoint.host)?;
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            let mut request = endpoint.http.request(method.clone(), url);
            if let Some(header) = self.authorization(endpoint, scope, credentials.as_ref()).await? {
                request = request.header(AUTHORIZATION, header);
            }
            let wait = match build(request)?.send().await {
                Err(e) if is_transient_error(&e) && attempt < retry.max_attempts => retry.backoff(attempt, None),
                Err(source) => return Err(Error::Http { method: method.to_string(), url: url.to_owned(), source }),
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !reauthenticated => {
                    // First 401, or a token that expired mid-operation: learn the challenge and try once more.
                    let challenge = response
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|h| h.to_str().ok())
                        .and_then(Challenge::parse)
                        .ok_or_else(|| Error::Auth {
                            registry: endpoint.host.clone(),
                            scope: scope.to_string(),
                            reason: format!("{method} {url}: 401 without a Basic or Bearer challenge"),
                        })?;
                    self.inner.authenticator.challenged(&endpoint.host, scope, challenge);
                    reauthenticated = true;
                    attempt -= 1;
                    continue;
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    let body = response.text().await.unwrap_or_default();
                    return Err(Error::Auth {
                        registry: endpoint.host.clone(),
                        scope: scope.to_string(),
                        reason: format!("{method} {url}: credentials rejected: {}", body.trim()),
                    });
                }
                Ok(response) if is_transient(response.status()) && attempt < retry.max_attempts => {
                    retry.backoff(attempt, retry_after(response.headers()))
                }
                Ok(response) => return Ok(response),
            };
            tracing::debug!(%method, url, attempt, ?wait, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn authorization(
        &self,
        endpoint: &Endpoint,
        scope: &Scope,
        credentials: Option<&crate::Credentials>,
    ) -> Result<Option<String>> {
        let authenticator = &self.inner.authenticator;
        match authenticator.authorization(&endpoint.host, scope, credentials) {
            Authorization::None => Ok(None),
            Authorization::Header(header) => Ok(Some(header)),
            Authorization::FetchToken { realm, service } => {
                let realm_host = url::Url::parse(&realm)
                    .ok()
                    .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
                    .unwrap_or_else(|| endpoint.host.clone());
                let http = &self.inner.transport.endpoint(&realm_host)?.http;
                let realm = (realm.as_str(), service.as_deref());
                // The issuer is reached without `send`, so its transient failures are retried here.
                let transient = |e: &Error| matches!(e, Error::Http { .. } | Error::Status { .. });
                let header = self.with_retries(transient, || {
                    authenticator.fetch_token(http, &endpoint.host, scope, realm, credentials)
                });
                Ok(Some(header.await?))
            }
        }
    }

    /// Runs `operation` until it succeeds, fails in a way `retryable` rejects, or the retry policy gives up: for
    /// multi-request steps (a download, an upload session) that must start over as a whole.
    pub(crate) async fn with_retries<T, F: Future<Output = Result<T>>>(
        &self,
        retryable: fn(&Error) -> bool,
        operation: impl Fn() -> F,
    ) -> Result<T> {
        let retry = &self.inner.retry;
        let mut attempt = 1;
        loop {
            match operation().await {
                Err(e) if attempt < retry.max_attempts && retryable(&e) => {
                    tracing::debug!(attempt, error = %e, "retrying");
                    tokio::time::sleep(retry.backoff(attempt, None)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// GETs a manifest by tag or digest and checks it against the digest asked for or announced; a body broken
    /// off mid-way is fetched again.
    pub(crate) async fn fetch_manifest(&self, repository: &Repository, reference: &str) -> Result<FetchedManifest> {
        self.with_retries(is_retryable, || self.fetch_manifest_once(repository, reference)).await
    }

    async fn fetch_manifest_once(&self, repository: &Repository, reference: &str) -> Result<FetchedManifest> {
        let url = repository.url(&format!("manifests/{reference}"));
        let response = self
            .send(&repository.endpoint, &repository.scope, Method::GET, &url, |r| Ok(r.header(ACCEPT, MANIFEST_ACCEPT)))
            .await?;
        let mut response = expect(response, &[StatusCode::OK]).await?;
        let content_type = header_str(response.headers(), CONTENT_TYPE.as_str());
        let announced = header_str(response.headers(), "docker-content-digest");
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| Error::Body { url: url.clone(), source })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_MANIFEST_SIZE {
                return Err(manifest_error(repository, reference, format!("larger than {MAX_MANIFEST_SIZE} bytes")));
            }
        }
        let digest = Digest::of(&bytes);
        // A digest reference is authoritative; a tag's only check is the digest the registry announces.
        let expected = reference.parse::<Digest>().ok().or_else(|| announced.and_then(|a| a.parse().ok()));
        if let Some(expected) = expected.filter(|e| *e != digest) {
            return Err(repository.verification_error(&expected, format!("manifest hashes to {digest}")));
        }
        Ok(FetchedManifest { bytes, digest, content_type })
    }
}

/// Failures worth starting a multi-request step over for: a body that broke off or content that did not verify.
/// Failed requests are not among them: `send` has already retried those as often as the policy allows.
pub(crate) fn is_retryable(error: &Error) -> bool {
    matches!(error, Error::Body { .. } | Error::Verification { .. })
}

/// Returns the response if its status is one of `ok`, else a `Status` error with the start of the body.
pub(crate) async fn expect(response: Response, ok: &[StatusCode]) -> Result<Response> {
    if ok.contains(&response.status()) {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let url = response.url().to_string();
    let mut body = response.text().await.unwrap_or_default();
    body.truncate(body.trim_end().len().min(512));
    Err(Error::Status { url, status, body })
}

/// A header's value as a string, if present and printable.
pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The `Location` of an upload session, resolved against the repository's endpoint.
pub(crate) fn location(repository: &Repository, response: &Response) -> Result<String> {
    header_str(response.headers(), LOCATION.as_str()).map(|l| repository.resolve(&l)).ok_or_else(|| Error::Status {
        url: response.url().to_string(),
        status: response.status().as_u16(),
        body: "no Location header".into(),
    })
}

pub(crate) fn manifest_error(repository: &Repository, reference: &str, reason: impl Into<String>) -> Error {
    Error::Manifest {
        registry: repository.endpoint.host.clone(),
        repository: repository.name.clone(),
        reference: reference.to_owned(),
        reason: reason.into(),
    }
}
