//! Where registry passwords come from and go to, compatible with Docker and Podman: the `auths`, `credsStore`
//! and `credHelpers` of `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`), `REGISTRY_AUTH_FILE`, and
//! Podman's `${XDG_RUNTIME_DIR}/containers/auth.json`. Credential helpers are `docker-credential-NAME`
//! programs speaking JSON on stdin/stdout.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// The key Docker files Docker Hub's credentials under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or personal access token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret, not even in a debug log.
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into() }
    }

    /// The base64 `user:password` of Basic auth and of Docker's `auths.*.auth`.
    pub fn basic_token(&self) -> String {
        BASE64.encode(format!("{}:{}", self.username, self.password))
    }

    fn from_basic_token(registry: &str, token: &str) -> Result<Self> {
        let error = |reason: &str| Error::Credentials { registry: registry.to_owned(), reason: reason.to_owned() };
        let decoded = BASE64.decode(token.trim()).map_err(|_| error("auth entry is not base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| error("auth entry is not UTF-8"))?;
        let (username, password) = text.split_once(':').ok_or_else(|| error("auth entry is not user:password"))?;
        Ok(Self::new(username, password))
    }
}

/// The files (and explicitly given credentials) consulted for a registry's credentials, in priority order.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    explicit: HashMap<String, Credentials>,
    /// Read in order; the first that knows the registry wins.
    files: Vec<PathBuf>,
    /// Where `login` writes: Docker's config file.
    docker_config: PathBuf,
}

impl CredentialStore {
    /// The files Docker and Podman read: `REGISTRY_AUTH_FILE`, Podman's runtime `auth.json`, Docker's config.
    pub fn from_env() -> Self {
        let docker_config = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
            .unwrap_or_else(|| PathBuf::from("/root/.docker"))
            .join("config.json");
        let mut files: Vec<PathBuf> = std::env::var_os("REGISTRY_AUTH_FILE").map(PathBuf::from).into_iter().collect();
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
            files.push(PathBuf::from(runtime).join("containers/auth.json"));
        }
        files.push(docker_config.clone());
        Self { explicit: HashMap::new(), files, docker_config }
    }

    /// Only the Docker config file at `path`: read from and written to.
    pub fn with_docker_config(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self { explicit: HashMap::new(), files: vec![path.clone()], docker_config: path }
    }

    /// Uses `credentials` for `registry` ahead of any file.
    pub fn with_credentials(mut self, registry: impl Into<String>, credentials: Credentials) -> Self {
        self.explicit.insert(registry.into(), credentials);
        self
    }

    /// The Docker config file `save` writes to.
    pub fn docker_config(&self) -> &Path {
        &self.docker_config
    }

    /// The credentials for `registry` (as written in references), or `None` for anonymous access.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(credentials) = self.explicit.get(registry) {
            return Ok(Some(credentials.clone()));
        }
        for file in &self.files {
            let Some(config) = read_config(registry, file)? else { continue };
            if let Some(helper) = helper_for(&config, registry) {
                if let Some(credentials) = run_helper_get(&helper, registry)? {
                    return Ok(Some(credentials));
                }
                continue;
            }
            let auths = config.get("auths").and_then(Value::as_object);
            for key in lookup_keys(registry) {
                if let Some(token) = auths.and_then(|a| a.get(&key)).and_then(|e| e.get("auth")).and_then(Value::as_str)
                {
                    return Credentials::from_basic_token(registry, token).map(Some);
                }
            }
        }
        Ok(None)
    }

    /// Stores credentials as `docker login` does: in the credential helper if one is configured, else base64 in
    /// `auths`. Other settings in the file are kept.
    pub fn save(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let mut config = read_config(registry, &self.docker_config)?.unwrap_or_default();
        if let Some(helper) = helper_for(&config, registry) {
            let input = json!({"ServerURL": storage_key(registry), "Username": credentials.username,
                "Secret": credentials.password});
            return run_helper(&helper, "store", registry, &input.to_string()).map(drop);
        }
        let auths = config.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(auths) = auths else {
            return Err(Error::Credentials { registry: registry.to_owned(), reason: "auths is not an object".into() });
        };
        auths.insert(storage_key(registry), json!({ "auth": credentials.basic_token() }));
        write_config(registry, &self.docker_config, &config)
    }

    /// Forgets the credentials for `registry`; returns whether there were any.
    pub fn erase(&self, registry: &str) -> Result<bool> {
        let Some(mut config) = read_config(registry, &self.docker_config)? else { return Ok(false) };
        if let Some(helper) = helper_for(&config, registry) {
            return run_helper(&helper, "erase", registry, &storage_key(registry)).map(|_| true);
        }
        let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) else { return Ok(false) };
        // Every key goes, not just the first found: a registry may be filed under several.
        let removed = lookup_keys(registry).iter().filter(|key| auths.remove(*key).is_some()).count() > 0;
        if removed {
            write_config(registry, &self.docker_config, &config)?;
        }
        Ok(removed)
    }
}

/// Keys a registry may be filed under: bare host, with a scheme, and Docker Hub's historic names.
fn lookup_keys(registry: &str) -> Vec<String> {
    let mut keys = vec![registry.to_owned(), format!("https://{registry}"), format!("http://{registry}")];
    if registry == crate::reference::DOCKER_HUB {
        keys.extend([DOCKER_HUB_KEY, "index.docker.io", "registry-1.docker.io"].map(str::to_owned));
    }
    keys
}

fn storage_key(registry: &str) -> String {
    if registry == crate::reference::DOCKER_HUB { DOCKER_HUB_KEY.to_owned() } else { registry.to_owned() }
}

fn helper_for(config: &Map<String, Value>, registry: &str) -> Option<String> {
    let per_host = config.get("credHelpers").and_then(Value::as_object);
    lookup_keys(registry)
        .iter()
        .find_map(|key| per_host.and_then(|h| h.get(key)).and_then(Value::as_str))
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

fn read_config(registry: &str, path: &Path) -> Result<Option<Map<String, Value>>> {
    let error = |reason: String| Error::Credentials { registry: registry.to_owned(), reason };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(format!("reading {}: {e}", path.display()))),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| error(format!("parsing {}: {e}", path.display())))
}

fn write_config(registry: &str, path: &Path, config: &Map<String, Value>) -> Result<()> {
    let error = |e: std::io::Error| Error::Credentials {
        registry: registry.to_owned(),
        reason: format!("writing {}: {e}", path.display()),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    let text = serde_json::to_string_pretty(config).expect("a JSON map serializes");
    // Written aside and renamed, with owner-only permissions: the file holds passwords.
    let temp = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::mode(file.write(true).create(true).truncate(true), 0o600);
    file.open(&temp).and_then(|mut f| f.write_all(text.as_bytes())).map_err(error)?;
    std::fs::rename(&temp, path).map_err(error)
}

fn run_helper_get(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    let Some(output) = run_helper(helper, "get", registry, &storage_key(registry))? else { return Ok(None) };
    let error = |reason: String| Error::Credentials { registry: registry.to_owned(), reason };
    let reply: Value = serde_json::from_str(&output)
        .map_err(|e| error(format!("docker-credential-{helper} printed invalid JSON: {e}")))?;
    let field = |name| reply.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(Some(Credentials::new(field("Username"), field("Secret"))))
}

/// Runs `docker-credential-HELPER ACTION` with `input` on stdin; `None` when the helper knows no credentials.
fn run_helper(helper: &str, action: &str, registry: &str, input: &str) -> Result<Option<String>> {
    let program = format!("docker-credential-{helper}");
    let error = |reason: String| Error::Credentials { registry: registry.to_owned(), reason };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| error(format!("running {program}: {e}")))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .map_err(|e| error(format!("writing to {program}: {e}")))?;
    let output = child.wait_with_output().map_err(|e| error(format!("running {program}: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(Some(stdout));
    }
    // Helpers say so on stdout (docker's protocol) or stderr (some third-party ones).
    let message = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    if action == "get" && message.contains("credentials not found") {
        return Ok(None);
    }
    Err(error(format!("{program} {action} failed ({}): {}", output.status, message.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn save_get_erase_round_trip_keeps_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{"other.io":{"auth":"dTpw"}},"detachKeys":"ctrl-x"}"#).unwrap();
        let store = CredentialStore::with_docker_config(&path);
        store.save("127.0.0.1:5000", &Credentials::new("alice", "s3:cret")).unwrap();
        assert_eq!(store.get("127.0.0.1:5000").unwrap(), Some(Credentials::new("alice", "s3:cret")));
        assert_eq!(store.get("other.io").unwrap(), Some(Credentials::new("u", "p")));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("detachKeys"), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(store.erase("127.0.0.1:5000").unwrap());
        assert!(!store.erase("127.0.0.1:5000").unwrap());
        assert_eq!(store.get("127.0.0.1:5000").unwrap(), None);
    }

    #[test]
    fn docker_hub_uses_the_index_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let store = CredentialStore::with_docker_config(&path);
        store.save("docker.io", &Credentials::new("bob", "pw")).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains(DOCKER_HUB_KEY));
        assert_eq!(store.get("docker.io").unwrap().unwrap().username, "bob");
    }

    #[test]
    fn credential_helpers_are_run() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\n[ \"$1\" = get ] || exit 1\n\
             [ \"$host\" = 'helped.io' ] && echo '{\"Username\":\"h\",\"Secret\":\"s\"}' && exit 0\n\
             echo 'credentials not found in native keychain'; exit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"helped.io":"fake"},"credsStore":"fake"}"#).unwrap();
        let old_path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.path().to_owned()];
        paths.extend(std::env::split_paths(&old_path));
        // SAFETY: this is the only test in the crate that touches the environment.
        unsafe { std::env::set_var("PATH", std::env::join_paths(paths).unwrap()) };
        let store = CredentialStore::with_docker_config(&path);
        assert_eq!(store.get("helped.io").unwrap(), Some(Credentials::new("h", "s")));
        assert_eq!(store.get("unknown.io").unwrap(), None);
    }

    #[test]
    fn debug_hides_the_password() {
        assert!(!format!("{:?}", Credentials::new("u", "hunter2")).contains("hunter2"));
    }
}
