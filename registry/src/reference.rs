//! Image references parsed and normalized the way Docker does: `busybox` is
//! `docker.io/library/busybox:latest`, a first component with `.` or `:` or equal to `localhost` is a registry,
//! repository paths are lowercase, tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, digests are `sha256:<hex>`.

use std::fmt;
use std::str::FromStr;

use strata_snapshotter::Digest;

use crate::error::{Error, Result};

/// Docker Hub's canonical registry name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's distribution API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The tag a reference without tag or digest means.
const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the length of registry plus repository.
const MAX_NAME_LENGTH: usize = 255;

/// A normalized image reference: registry, repository, and a tag, a digest or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes a reference as `docker pull` does; a bare name gets the `latest` tag.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidReference { reference: input.to_owned(), reason: reason.to_owned() };
        if input.is_empty() {
            return Err(invalid("empty reference"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest).map_err(|reason| invalid(&reason))?)),
            None => (input, None),
        };
        // A colon after the last slash starts the tag; one before it belongs to the registry's port.
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if !rest[colon..].contains('/') => (&rest[..colon], Some(&rest[colon + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(invalid)?;
        }
        let (registry, repository) = split_registry(name);
        validate_registry(registry).map_err(invalid)?;
        validate_repository(repository).map_err(invalid)?;
        let (registry, repository) = normalize(registry, repository);
        if registry.len() + 1 + repository.len() > MAX_NAME_LENGTH {
            return Err(invalid("repository name must not be longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Self { registry, repository, tag, digest })
    }

    /// The registry as written in references (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host serving the registry's API: Docker Hub's references name `docker.io`, its API is elsewhere.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB { DOCKER_HUB_API } else { &self.registry }
    }

    /// The repository path (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to put after `/manifests/`: the digest when pinned (it wins over the tag), else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The same repository pinned to `digest`, without a tag.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self { digest: Some(digest), tag: None, ..self.clone() }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits off the registry as Docker does: only a first component that looks like a host is one.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn normalize(registry: &str, repository: &str) -> (String, String) {
    let registry = if registry == "index.docker.io" { DOCKER_HUB } else { registry };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_owned()
    };
    (registry.to_owned(), repository)
}

fn parse_digest(digest: &str) -> Result<Digest, String> {
    match digest.split_once(':') {
        Some(("sha256", _)) => digest.parse().map_err(|_| "a sha256 digest has 64 lowercase hex digits".to_owned()),
        Some((algorithm, _)) => Err(format!("unsupported digest algorithm {algorithm:?}: only sha256")),
        None => Err("digest must be algorithm:hex".to_owned()),
    }
}

fn validate_tag(tag: &str) -> Result<(), &'static str> {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if tag.is_empty() {
        Err("empty tag")
    } else if tag.len() > 128 {
        Err("tag must not be longer than 128 characters")
    } else if first_ok && rest_ok {
        Ok(())
    } else {
        Err("tag must match [A-Za-z0-9_][A-Za-z0-9_.-]*")
    }
}

/// A host name or IPv4 address (dot-separated labels of alphanumerics and inner hyphens), or a bracketed IPv6
/// address, with an optional numeric port.
fn validate_registry(registry: &str) -> Result<(), &'static str> {
    const BAD: &str = "registry must be a host name or IP address with an optional :port";
    let (host, port) = if let Some(ipv6) = registry.strip_prefix('[') {
        let (addr, after) = ipv6.split_once(']').ok_or(BAD)?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(BAD);
        }
        (None, if after.is_empty() { None } else { Some(after.strip_prefix(':').ok_or(BAD)?) })
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.parse::<u16>().is_err())
    {
        return Err("registry port must be a number from 0 to 65535");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    match host {
        Some(host) if !host.split('.').all(label_ok) => Err(BAD),
        _ => Ok(()),
    }
}

/// Slash-separated components of lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn validate_repository(repository: &str) -> Result<(), &'static str> {
    if repository.is_empty() {
        return Err("empty repository name");
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    for component in repository.split('/') {
        if !valid_path_component(component) {
            return Err("repository path components must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*");
        }
    }
    Ok(())
}

fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    // Between alphanumeric runs: exactly one `.` or `_`, exactly `__`, or any number of `-`.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/library/busybox:musl", "docker.io/library/busybox:musl"),
            ("user/app", "docker.io/user/app:latest"),
            ("user/app/sub", "docker.io/user/app/sub:latest"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:v1", "localhost:5000/app:v1"),
            ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"),
            ("ghcr.io/org/tool:1.0.0-rc.1", "ghcr.io/org/tool:1.0.0-rc.1"),
            ("quay.io/a/b/c/d:_x", "quay.io/a/b/c/d:_x"),
            ("Registry/app", "Registry/app:latest"),
            ("[::1]:5000/app", "[::1]:5000/app:latest"),
            ("my-registry.example.com/a.b/c_d/e__f/g--h", "my-registry.example.com/a.b/c_d/e__f/g--h:latest"),
        ];
        for (input, expected) in cases {
            let reference = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(reference.to_string(), expected, "{input}");
        }
    }

    #[test]
    fn digests_pin_and_keep_an_explicit_tag() {
        let r = Reference::parse(&format!("busybox@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), format!("sha256:{HEX}"));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@sha256:{HEX}"));
        let r = Reference::parse(&format!("127.0.0.1:5000/app:v2@sha256:{HEX}")).unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag()), ("127.0.0.1:5000", "app", Some("v2")));
        assert_eq!(r.manifest_reference(), format!("sha256:{HEX}"));
    }

    #[test]
    fn splits_registry_repository_and_tag() {
        let r = Reference::parse("localhost:5000/team/app:1.2").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.api_host(), "localhost:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("1.2"));
        assert_eq!(r.name(), "localhost:5000/team/app");
        assert_eq!(Reference::parse("alpine").unwrap().api_host(), "registry-1.docker.io");
    }

    #[test]
    fn rejects_bad_references_with_a_reason() {
        let long_tag = format!("app:{}", "t".repeat(129));
        let long_name = format!("example.com/{}", "a".repeat(250));
        let cases = [
            ("", "empty"),
            ("BusyBox", "lowercase"),
            ("docker.io/Library/busybox", "lowercase"),
            ("busybox:", "empty tag"),
            ("busybox:-x", "tag must match"),
            ("busybox:a+b", "tag must match"),
            (long_tag.as_str(), "128"),
            ("busybox@sha256:abc", "64 lowercase hex"),
            ("busybox@md5:abcd", "unsupported digest algorithm"),
            ("busybox@abcd", "algorithm:hex"),
            ("a//b", "path components"),
            ("app_", "path components"),
            ("a...b", "path components"),
            ("a___b", "path components"),
            ("-app", "path components"),
            ("example.com/", "empty repository"),
            ("example.com:port/app", "port must be a number"),
            ("example.com:99999/app", "port must be a number"),
            ("ex_ample.com/app", "host name"),
            ("-bad.com/app", "host name"),
            (long_name.as_str(), "255"),
        ];
        for (input, reason) in cases {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
            assert!(err.contains(&format!("{input:?}")), "{input:?}: message does not name the input: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        let pinned = format!("localhost/x@sha256:{HEX}");
        for input in ["docker.io/library/busybox:latest", "127.0.0.1:5000/a/b:c", &pinned] {
            assert_eq!(Reference::parse(input).unwrap().to_string(), input);
        }
    }
}
