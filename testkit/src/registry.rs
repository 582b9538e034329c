//! A real distribution registry (Debian's `docker-registry`) on 127.0.0.1, started per test.

use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::require_tool;

/// How clients must authenticate to the registry.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    /// Anyone may pull and push.
    None,
    /// Basic auth against an htpasswd file (bcrypt entries; `htpasswd -Bbn` makes them).
    Htpasswd(PathBuf),
    /// Bearer tokens from an issuer at `realm`, signed by a key whose certificate is in `root_cert_bundle`.
    Token { realm: String, service: String, issuer: String, root_cert_bundle: PathBuf },
}

/// A running registry; stopped when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    tls: bool,
    dir: tempfile::TempDir,
}

/// Options for [`Registry::start_with`].
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// PEM certificate and key to serve HTTPS with; plain HTTP when `None`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The authentication scheme.
    pub auth: RegistryAuth,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self { tls: None, auth: RegistryAuth::None }
    }
}

impl Registry {
    /// Starts a plain-HTTP registry without auth.
    pub fn start() -> Self {
        Self::start_with(RegistryOptions::default())
    }

    /// Starts a registry with TLS and auth as given, and waits until it accepts connections.
    pub fn start_with(options: RegistryOptions) -> Self {
        require_tool("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        fs::write(&config, config_yaml(&dir.path().join("storage"), port, &options)).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .env("REGISTRY_HTTP_SECRET", "strata-test")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut registry = Self { child, port, tls: options.tls.is_some(), dir };
        registry.wait_ready();
        registry
    }

    /// `127.0.0.1:PORT`, the registry's host part of image references.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The base URL, `http://` or `https://` as configured.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr())
    }

    /// The registry's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("docker-registry did not listen on {} within 15 s:\n{}", self.addr(), self.log());
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config_yaml(storage: &std::path::Path, port: u16, options: &RegistryOptions) -> String {
    let mut y = String::new();
    writeln!(y, "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}", storage.display())
        .unwrap();
    writeln!(y, "  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}").unwrap();
    if let Some((cert, key)) = &options.tls {
        writeln!(y, "  tls:\n    certificate: {}\n    key: {}", cert.display(), key.display()).unwrap();
    }
    match &options.auth {
        RegistryAuth::None => {}
        RegistryAuth::Htpasswd(path) => {
            writeln!(y, "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}", path.display()).unwrap();
        }
        RegistryAuth::Token { realm, service, issuer, root_cert_bundle } => {
            writeln!(
                y,
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}",
                root_cert_bundle.display()
            )
            .unwrap();
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_registry_answers_the_v2_ping() {
        let registry = Registry::start();
        let mut stream = TcpStream::connect(("127.0.0.1", registry.port)).unwrap();
        use std::io::{Read, Write};
        write!(stream, "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", registry.addr()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}\n{}", registry.log());
    }
}
