//! `RUN --mount=type=ssh`: a socket of the step's own that forwards each connection to the SSH agent the build
//! was given, so the mount gets the mode and owner the Dockerfile asks for without touching the user's agent
//! socket, and lives only as long as the step.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::error::{IoContext, Result};

/// A forwarding socket; stops accepting when dropped.
pub(crate) struct AgentProxy {
    dir: tempfile::TempDir,
    accepting: JoinHandle<()>,
}

impl AgentProxy {
    /// Listens on a fresh socket with `mode`, `uid` and `gid`, forwarding to the agent at `agent`. Must be
    /// called within a tokio runtime.
    pub(crate) fn start(agent: &Path, id: &str, mode: u32, uid: u32, gid: u32) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("strata-ssh-")
            .tempdir()
            .io_context(|| format!("creating a directory for ssh agent {id}"))?;
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket).io_context(|| format!("listening for ssh agent {id}"))?;
        fs::set_permissions(&socket, fs::Permissions::from_mode(mode))
            .io_context(|| format!("setting the mode of ssh agent socket {id}"))?;
        std::os::unix::fs::chown(&socket, Some(uid), Some(gid))
            .io_context(|| format!("changing the owner of ssh agent socket {id}"))?;
        let agent = agent.to_owned();
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let agent = agent.clone();
                tokio::spawn(async move {
                    match UnixStream::connect(&agent).await {
                        Ok(mut upstream) => {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                        Err(e) => tracing::warn!("connecting to the ssh agent {}: {e}", agent.display()),
                    }
                });
            }
        });
        Ok(Self { dir, accepting })
    }

    /// The socket to mount into the container.
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::process::{Command, Stdio};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_real_agent_answers_through_the_proxy() {
        if !strata_testkit::require_root("a_real_agent_answers_through_the_proxy") {
            return;
        }
        strata_testkit::require_tool("ssh-agent");
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent.sock");
        let mut child =
            Command::new("ssh-agent").arg("-D").arg("-a").arg(&agent).stdout(Stdio::null()).spawn().unwrap();
        while !agent.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let proxy = AgentProxy::start(&agent, "default", 0o600, 1000, 1000).unwrap();
        let meta = fs::metadata(proxy.socket()).unwrap();
        assert_eq!((meta.mode() & 0o777, meta.uid(), meta.gid()), (0o600, 1000, 1000));
        let mut client = UnixStream::connect(proxy.socket()).await.unwrap();
        // SSH_AGENTC_REQUEST_IDENTITIES; the agent answers SSH_AGENT_IDENTITIES_ANSWER (12) with no keys.
        client.write_all(&[0, 0, 0, 1, 11]).await.unwrap();
        let mut answer = [0u8; 9];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [0, 0, 0, 5, 12, 0, 0, 0, 0]);
        let _ = child.kill();
        let _ = child.wait();
    }
}
