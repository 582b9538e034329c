//! Per-registry settings in buildkitd.toml's shape:
//!
//! ```toml
//! [registry."docker.io"]
//! mirrors = ["127.0.0.1:5000"]
//! [registry."127.0.0.1:5000"]
//! http = true
//! insecure = true
//! ca = ["/path/ca.pem"]
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The registry section of a buildkitd.toml-like file; other sections are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistryConfig {
    #[serde(default)]
    registry: HashMap<String, HostConfig>,
}

/// How to reach one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Hosts tried, in order, before the registry itself when pulling.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Plain HTTP instead of HTTPS.
    #[serde(default)]
    pub http: bool,
    /// HTTPS without certificate verification.
    #[serde(default)]
    pub insecure: bool,
    /// Extra PEM CA bundles trusted for this host, on top of the system roots.
    #[serde(default)]
    pub ca: Vec<PathBuf>,
}

impl RegistryConfig {
    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let error = |reason: String| Error::Config { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        toml::from_str(&text).map_err(|e| error(e.to_string()))
    }

    /// Reads the file at `path` if given; otherwise no registry has special settings.
    pub fn load_optional(path: Option<&Path>) -> Result<Self> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    /// Sets the configuration of one host, replacing any it had.
    pub fn with_host(mut self, host: impl Into<String>, config: HostConfig) -> Self {
        self.registry.insert(host.into(), config);
        self
    }

    /// The settings for `host` (a reference's registry or a mirror); defaults when the file does not name it.
    pub fn host(&self, host: &str) -> HostConfig {
        self.registry.get(host).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_buildkitd_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buildkitd.toml");
        std::fs::write(
            &path,
            r#"
debug = true
[registry."docker.io"]
mirrors = ["127.0.0.1:5000"]
[registry."127.0.0.1:5000"]
http = true
insecure = true
ca = ["/etc/ca.pem"]
"#,
        )
        .unwrap();
        let config = RegistryConfig::load(&path).unwrap();
        assert_eq!(config.host("docker.io").mirrors, ["127.0.0.1:5000"]);
        let local = config.host("127.0.0.1:5000");
        assert!(local.http && local.insecure);
        assert_eq!(local.ca, [PathBuf::from("/etc/ca.pem")]);
        assert_eq!(config.host("quay.io"), HostConfig::default());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[registry.\"x\"]\nhttp = \"yes\"\n").unwrap();
        let err = RegistryConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml"), "{err}");
    }
}
