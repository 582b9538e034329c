//! `--ssh default|ID[=SOCKET|KEY[,KEY...]]`, as buildx takes it: an agent socket to forward (`default` and a
//! bare ID mean `$SSH_AUTH_SOCK`), or private key files, which a private `ssh-agent` holds for the build.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::CliError;

/// The agents of one build: each id's socket, and the private agents serving key files (killed on drop).
#[derive(Default)]
pub struct Agents {
    /// Each id with the agent socket to forward.
    pub sockets: Vec<(String, PathBuf)>,
    private: Vec<(Child, tempfile::TempDir)>,
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (child, _) in &mut self.private {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The agents `specs` name.
pub fn agents(specs: &[String]) -> Result<Agents, CliError> {
    let mut agents = Agents::default();
    for spec in specs {
        let (id, paths) = match spec.split_once('=') {
            Some((id, paths)) => (id, paths.split(',').map(PathBuf::from).collect::<Vec<_>>()),
            None => (spec.as_str(), Vec::new()),
        };
        if id.is_empty() {
            return Err(CliError(format!("--ssh {spec}: the id is empty")));
        }
        let socket = match paths.as_slice() {
            [] => match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
                Some(socket) => PathBuf::from(socket),
                None => return Err(CliError(format!("--ssh {spec}: SSH_AUTH_SOCK is not set; give a socket or key"))),
            },
            [path] if is_socket(path) => path.clone(),
            keys => {
                let (child, dir) = private_agent(spec, keys)?;
                let socket = dir.path().join("agent.sock");
                agents.private.push((child, dir));
                socket
            }
        };
        if !is_socket(&socket) {
            return Err(CliError(format!("--ssh {spec}: {} is not a socket", socket.display())));
        }
        agents.sockets.push((id.to_owned(), socket));
    }
    Ok(agents)
}

fn is_socket(path: &Path) -> bool {
    std::os::unix::fs::FileTypeExt::is_socket(&match std::fs::metadata(path) {
        Ok(meta) => meta.file_type(),
        Err(_) => return false,
    })
}

/// Starts `ssh-agent` on a socket of its own and adds `keys` to it.
fn private_agent(spec: &str, keys: &[PathBuf]) -> Result<(Child, tempfile::TempDir), CliError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| CliError(format!("--ssh {spec}: {what}: {e}"));
    let dir = tempfile::Builder::new().prefix("strata-ssh-agent-").tempdir().map_err(|e| failed("tempdir", &e))?;
    let socket = dir.path().join("agent.sock");
    let mut child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| failed("starting ssh-agent (Debian package openssh-client)", &e))?;
    let started = Instant::now();
    while !is_socket(&socket) {
        if started.elapsed() > Duration::from_secs(5) || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            return Err(failed("ssh-agent", &"did not start"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let added = Command::new("ssh-add")
        .args(keys)
        .env("SSH_AUTH_SOCK", &socket)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed("running ssh-add", &e));
    match added {
        Ok(out) if out.status.success() => Ok((child, dir)),
        result => {
            let _ = child.kill();
            let _ = child.wait();
            let reason = result.map(|out| String::from_utf8_lossy(&out.stderr).trim().to_owned());
            Err(reason.map_or_else(|e| e, |reason| failed("adding the keys", &reason)))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_id_without_a_socket_or_key_needs_ssh_auth_sock() {
        let err = super::agents(&["=x".into()]).err().unwrap();
        assert!(err.0.contains("the id is empty"), "{err}");
        let err = super::agents(&["github=/nonexistent/socket".into()]).err().unwrap();
        assert!(err.0.contains("--ssh github=/nonexistent/socket"), "{err}");
    }
}
