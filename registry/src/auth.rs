//! The distribution auth flow: parse `WWW-Authenticate`, answer Basic challenges with credentials, and get
//! Bearer tokens from the realm for a scope (`repository:NAME:pull`), cached per registry and scope until
//! shortly before they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::credentials::Credentials;
use crate::error::{Error, Result};

/// Tokens are renewed this long before the issuer says they expire, so none expires in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// The lifetime the token spec prescribes when an issuer does not say.
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

/// The access an operation needs, as token scopes: `repository:NAME:pull` or `repository:NAME:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    /// No repository access: what `docker login` asks for to check credentials.
    pub fn registry() -> Self {
        Self(Vec::new())
    }

    /// Pull access to one repository.
    pub fn pull(repository: &str) -> Self {
        Self(vec![format!("repository:{repository}:pull")])
    }

    /// Pull and push access to one repository.
    pub fn push(repository: &str) -> Self {
        Self(vec![format!("repository:{repository}:pull,push")])
    }

    /// This scope plus pull access to another repository (for cross-repository mounts).
    pub fn and_pull(mut self, repository: &str) -> Self {
        self.0.push(format!("repository:{repository}:pull"));
        self
    }

    /// The scope strings, one `scope=` query parameter each.
    pub fn items(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send `Authorization: Basic` with the user's credentials.
    Basic,
    /// Get a token from `realm` for `service` and send it as `Authorization: Bearer`.
    Bearer { realm: String, service: Option<String> },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value; `None` for schemes other than Basic and Bearer.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Self::Basic),
            "bearer" => {
                let params = parse_params(params);
                Some(Self::Bearer { realm: params.get("realm")?.clone(), service: params.get("service").cloned() })
            }
            _ => None,
        }
    }
}

/// `key="quoted, value",key2=token` pairs; keys lowercased, backslash escapes honoured.
fn parse_params(input: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = input.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, remaining) = if let Some(quoted) = after.trim_start().strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',');
    }
    params
}

/// How to authorize the next request to a registry.
#[derive(Debug, Clone)]
pub(crate) enum Authorization {
    /// Nothing: the registry has not challenged, or the request is anonymous.
    None,
    /// A ready `Authorization` header value.
    Header(String),
    /// A Bearer token must first be fetched from `realm`.
    FetchToken { realm: String, service: Option<String> },
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    header: String,
    renew_at: Instant,
}

/// Per-registry challenges and per-scope tokens, shared by every request of a client.
#[derive(Debug, Default)]
pub(crate) struct Authenticator {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, Scope), CachedToken>>,
}

impl Authenticator {
    /// Remembers what `registry` asked for in a 401 and forgets the token that was refused.
    pub(crate) fn challenged(&self, registry: &str, scope: &Scope, challenge: Challenge) {
        self.challenges.lock().expect("auth lock").insert(registry.to_owned(), challenge);
        self.tokens.lock().expect("auth lock").remove(&(registry.to_owned(), scope.clone()));
    }

    /// What to send to `registry` for `scope`, from its last challenge and the token cache.
    pub(crate) fn authorization(
        &self,
        registry: &str,
        scope: &Scope,
        credentials: Option<&Credentials>,
    ) -> Authorization {
        let challenge = self.challenges.lock().expect("auth lock").get(registry).cloned();
        match challenge {
            None => Authorization::None,
            Some(Challenge::Basic) => match credentials {
                Some(c) => Authorization::Header(format!("Basic {}", c.basic_token())),
                None => Authorization::None,
            },
            Some(Challenge::Bearer { realm, service }) => {
                let cached = self.tokens.lock().expect("auth lock").get(&(registry.to_owned(), scope.clone())).cloned();
                match cached {
                    Some(token) if Instant::now() < token.renew_at => Authorization::Header(token.header),
                    _ => Authorization::FetchToken { realm, service },
                }
            }
        }
    }

    /// Gets a token for `scope` from `realm` (with Basic credentials if any), caches it and returns the header.
    pub(crate) async fn fetch_token(
        &self,
        http: &reqwest::Client,
        registry: &str,
        scope: &Scope,
        (realm, service): (&str, Option<&str>),
        credentials: Option<&Credentials>,
    ) -> Result<String> {
        let auth_error =
            |reason: String| Error::Auth { registry: registry.to_owned(), scope: scope.to_string(), reason };
        let mut url = url::Url::parse(realm).map_err(|e| auth_error(format!("token realm {realm:?}: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for item in scope.items() {
                query.append_pair("scope", item);
            }
        }
        let mut request = http.get(url.clone());
        if let Some(credentials) = credentials {
            request = request.basic_auth(&credentials.username, Some(&credentials.password));
        }
        let response = request.send().await.map_err(|source| Error::Http {
            method: "GET".into(),
            url: url.to_string(),
            source,
        })?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let body = response.text().await.unwrap_or_default();
            return Err(Error::Status { url: url.to_string(), status: status.as_u16(), body });
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(auth_error(format!("token issuer {url} answered {status}: {}", body.trim())));
        }
        let reply: TokenResponse =
            response.json().await.map_err(|e| auth_error(format!("token issuer {url} sent bad JSON: {e}")))?;
        let token = reply.token.or(reply.access_token).ok_or_else(|| auth_error(format!("{url} sent no token")))?;
        let lifetime = Duration::from_secs(reply.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME));
        let header = format!("Bearer {token}");
        let renew_at = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        self.tokens
            .lock()
            .expect("auth lock")
            .insert((registry.to_owned(), scope.clone()), CachedToken { header: header.clone(), renew_at });
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let bearer = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#;
        assert_eq!(
            Challenge::parse(bearer),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(Challenge::parse(r#"Basic realm="strata-test""#), Some(Challenge::Basic));
        assert_eq!(Challenge::parse("basic"), Some(Challenge::Basic));
        assert_eq!(
            Challenge::parse(r#"Bearer service=svc, realm="http://127.0.0.1:1/t\"x""#),
            Some(Challenge::Bearer { realm: "http://127.0.0.1:1/t\"x".into(), service: Some("svc".into()) })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse("Negotiate abc"), None);
    }

    #[test]
    fn scopes_render_as_token_scopes() {
        let scope = Scope::push("team/app").and_pull("library/busybox");
        assert_eq!(scope.items(), ["repository:team/app:pull,push", "repository:library/busybox:pull"]);
        assert_eq!(Scope::pull("a").to_string(), "repository:a:pull");
    }

    #[test]
    fn basic_challenges_use_credentials_and_bearer_ones_need_a_token() {
        let auth = Authenticator::default();
        let scope = Scope::pull("a");
        let credentials = Credentials::new("u", "p");
        assert!(matches!(auth.authorization("r", &scope, Some(&credentials)), Authorization::None));
        auth.challenged("r", &scope, Challenge::Basic);
        assert!(matches!(auth.authorization("r", &scope, Some(&credentials)),
            Authorization::Header(h) if h == "Basic dTpw"));
        assert!(matches!(auth.authorization("r", &scope, None), Authorization::None));
        auth.challenged("r", &scope, Challenge::Bearer { realm: "http://x/token".into(), service: None });
        assert!(matches!(auth.authorization("r", &scope, None), Authorization::FetchToken { .. }));
    }
}
