//! HTTP(S) to registries: one client per host configured from [`RegistryConfig`] (plain HTTP, extra CAs,
//! no verification), and the retry policy for what a flaky network or a busy registry throws at us.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::config::RegistryConfig;
use crate::error::{Error, Result};

/// How often and how patiently a failed request is tried again.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between tries, also the cap on a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 6, initial_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The wait before try number `attempt + 1`: the server's `Retry-After` if it sent one, else exponential.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self.initial_backoff.saturating_mul(1 << attempt.saturating_sub(1).min(16));
        retry_after.unwrap_or(exponential).min(self.max_backoff)
    }
}

/// Whether a status means "try again later": throttling and transient server trouble, not a broken request.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// Whether a failure on the wire is worth another try: resets, refusals and timeouts are; a malformed request
/// or a TLS failure (an untrusted certificate stays untrusted) is not.
pub(crate) fn is_transient_error(error: &reqwest::Error) -> bool {
    !error.is_builder() && !error.is_redirect() && !is_tls_failure(error)
}

fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        // hyper wraps rustls' error in an io::Error, whose `source` skips the wrapped error itself.
        let inner = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|i| i as &dyn std::error::Error);
        if e.is::<rustls::Error>() || inner.is_some_and(|i| i.is::<rustls::Error>()) {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A `Retry-After` in seconds; the HTTP-date form is rare from registries and treated as absent.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok().map(Duration::from_secs)
}

/// One registry host as reached over HTTP: where its API is and the client configured for it.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `host[:port]`, the key for configuration, credentials and auth challenges.
    pub(crate) host: String,
    /// `http://host` or `https://host`.
    pub(crate) base: String,
    /// The HTTP client with this host's TLS settings.
    pub(crate) http: reqwest::Client,
}

/// Builds and caches one HTTP client per host.
#[derive(Debug)]
pub(crate) struct Transport {
    config: RegistryConfig,
    read_timeout: Duration,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
}

impl Transport {
    pub(crate) fn new(config: RegistryConfig, read_timeout: Duration) -> Self {
        install_crypto_provider();
        Self { config, read_timeout, endpoints: Mutex::new(HashMap::new()) }
    }

    /// The configuration the transport was built with.
    pub(crate) fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The endpoint for `host`, built on first use.
    pub(crate) fn endpoint(&self, host: &str) -> Result<Arc<Endpoint>> {
        if let Some(endpoint) = self.endpoints.lock().expect("endpoint lock").get(host) {
            return Ok(endpoint.clone());
        }
        let settings = self.config.host(host);
        let error = |reason: String| Error::Client { registry: host.to_owned(), reason };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(self.read_timeout)
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")));
        for ca in &settings.ca {
            let pem = std::fs::read(ca).map_err(|e| error(format!("reading CA {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| error(format!("parsing CA {}: {e}", ca.display())))?;
            builder = builder.tls_certs_merge(certs);
        }
        if settings.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| error(e.to_string()))?;
        let scheme = if settings.http { "http" } else { "https" };
        let endpoint = Arc::new(Endpoint { host: host.to_owned(), base: format!("{scheme}://{host}"), http });
        self.endpoints.lock().expect("endpoint lock").insert(host.to_owned(), endpoint.clone());
        Ok(endpoint)
    }
}

/// reqwest is built without a default rustls provider (aws-lc costs a minute per clean build): use ring.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let waits: Vec<_> = (1..=6).map(|a| policy.backoff(a, None).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(1, Some(Duration::from_millis(700))), Duration::from_millis(700));
        assert_eq!(policy.backoff(1, Some(Duration::from_secs(60))), Duration::from_secs(1));
    }

    #[test]
    fn transient_statuses() {
        for code in [429, 500, 502, 503, 504] {
            assert!(is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 400, 401, 404, 501] {
            assert!(!is_transient(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn reads_retry_after_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
