//! RUN: a process over a writable snapshot of its root input, with bind, cache, tmpfs, secret and ssh mounts,
//! its network, and all capabilities for `--security=insecure` when the build allows it. Output lines stream
//! to the progress sink; a non-zero exit fails the step and discards the snapshot.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use strata_llb::{CacheSharing, Definition, ExecOp, MountKind, NetworkMode, NodeId, Op, SecurityMode};
use strata_runtime::{Network, ProcessSpec, Rootfs};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::error::{Error, IoContext, Result};
use crate::file::{copy_tree, resolve_in_root};
use crate::snapshot::{ActiveTree, ReadTree};
use crate::ssh::AgentProxy;
use crate::state::{cache_mounts_dir, lock_dir};
use crate::stubs::Stubs;
use crate::{Inner, Progress, Stream};

/// What keeps an exec's extra mounts alive until the process is gone.
#[derive(Default)]
struct MountHolds {
    reads: Vec<ReadTree>,
    scratch: Vec<ActiveTree>,
    dirs: Vec<tempfile::TempDir>,
    locks: Vec<fs::File>,
    agents: Vec<AgentProxy>,
}

impl MountHolds {
    /// A fresh, empty cache directory for `id`, thrown away after the step.
    fn fresh_dir(&mut self, id: &str) -> Result<PathBuf> {
        let scratch = tempfile::Builder::new()
            .prefix("strata-cache-")
            .tempdir()
            .io_context(|| format!("creating a fresh cache mount {id}"))?;
        let dir = scratch.path().join("cache");
        self.dirs.push(scratch);
        Ok(dir)
    }
}

/// Refuses a definition with a `RUN --security=insecure` step unless the build allows `security.insecure`,
/// naming the step; checked before anything runs, as BuildKit checks entitlements when loading the definition
/// (which, like the lowered graph, holds only what the target needs).
pub(crate) fn check_entitlements(inner: &Inner, definition: &Definition) -> Result<()> {
    if inner.allow_insecure {
        return Ok(());
    }
    let insecure = definition
        .graph
        .nodes()
        .iter()
        .find(|node| matches!(&node.op, Op::Exec(exec) if exec.security == SecurityMode::Insecure));
    match insecure {
        Some(node) => Err(Error::NotAllowed { step: node.meta.description.clone(), entitlement: "security.insecure" }),
        None => Ok(()),
    }
}

/// The runtime's network for `mode`: strata's default is the host's (BuildKit's OCI worker with host networking).
fn network(mode: NetworkMode) -> Network {
    match mode {
        NetworkMode::None => Network::None,
        NetworkMode::Host | NetworkMode::Default => Network::Host,
    }
}

/// Runs `op` of node `node`; `inputs[i]` is input `i`'s snapshot (`None` for empty). Returns the root
/// snapshot with the process's changes, still to be committed.
/// With `fresh_cache_mounts` (a `--no-cache` step), cache mounts start empty and what they get is thrown away.
pub(crate) async fn run(
    inner: &Inner,
    node: NodeId,
    op: &ExecOp,
    inputs: &[Option<String>],
    fresh_cache_mounts: bool,
) -> Result<ActiveTree> {
    let command = op.args.join(" ");
    let root_input = op.mounts.first().and_then(|m| m.input).and_then(|i| inputs.get(i).cloned().flatten());
    let snapshotter = inner.snapshotter.clone();
    let mut root = tokio::task::block_in_place(|| ActiveTree::prepare(&snapshotter, root_input.as_deref()))?;
    let targets: Vec<&str> = op.mounts.iter().skip(1).map(|m| m.target.as_str()).filter(|t| !t.is_empty()).collect();
    let mut stubs = Stubs::default();
    if op.cwd != "/" || !targets.is_empty() {
        let dir = tokio::task::block_in_place(|| root.mount())?;
        stubs = Stubs::find(&dir, targets)?;
        if op.cwd != "/" {
            // BuildKit creates the working directory if the image lacks it.
            let cwd = resolve_in_root(&dir, &op.cwd, true)?;
            fs::create_dir_all(&cwd).io_context(|| format!("creating the working directory {}", op.cwd))?;
        }
        // The container mounts the snapshot itself; two overlay mounts must never share an upper directory.
        tokio::task::block_in_place(|| root.unmount())?;
    }
    let mut holds = MountHolds::default();
    let mut builder = ProcessSpec::builder(Rootfs::Mounts(root.mounts().to_vec()), op.args.clone())
        .envs(op.env.iter().chain(&proxy_env(&op.proxy_env)))
        .cwd(&op.cwd)
        .user(if op.user.is_empty() { "0" } else { op.user.as_str() })
        .network(network(op.network))
        .privileged(op.security == SecurityMode::Insecure);
    // BuildKit points SSH_AUTH_SOCK at the first ssh mount unless the step sets it.
    let first_ssh = op.mounts.iter().find(|m| matches!(m.kind, MountKind::Ssh { .. }));
    if let Some(mount) = first_ssh.filter(|_| !op.env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK="))) {
        builder = builder.env("SSH_AUTH_SOCK", &mount.target);
    }
    for mount in op.mounts.iter().skip(1) {
        let input = mount.input.and_then(|i| inputs.get(i).cloned().flatten());
        builder = match &mount.kind {
            MountKind::Bind => {
                let dir = if mount.readonly {
                    let tree = tokio::task::block_in_place(|| ReadTree::open(&snapshotter, input.as_deref()))?;
                    let path = tree.path().to_owned();
                    holds.reads.push(tree);
                    path
                } else {
                    // Writes to a read-write bind are thrown away with this scratch snapshot.
                    let mut tree = tokio::task::block_in_place(|| ActiveTree::prepare(&snapshotter, input.as_deref()))?;
                    let path = tokio::task::block_in_place(|| tree.mount())?;
                    holds.scratch.push(tree);
                    path
                };
                let source = match &mount.selector {
                    Some(selector) => resolve_in_root(&dir, selector, true)?,
                    None => dir,
                };
                builder.bind(source, &mount.target, mount.readonly)
            }
            MountKind::Cache { id, sharing, mode, uid, gid } => {
                let cache = CacheMount { id, mode: *mode, uid: *uid, gid: *gid };
                // `from=` seeds the cache with a tree; like BuildKit, that makes it another cache than the bare id.
                let seed = match &input {
                    Some(snapshot) => {
                        let tree = tokio::task::block_in_place(|| ReadTree::open(&snapshotter, Some(snapshot)))?;
                        let path = resolve_in_root(tree.path(), mount.selector.as_deref().unwrap_or("/"), true)?;
                        holds.reads.push(tree);
                        Some((snapshot.as_str(), path))
                    }
                    None => None,
                };
                let seed = seed.as_ref().map(|(name, path)| (*name, path.as_path()));
                let dir = if fresh_cache_mounts {
                    cache.create(&holds.fresh_dir(id)?, seed.map(|(_, path)| path))?
                } else {
                    let dir = cache.create(
                        &cache.persistent_dir(&inner.root, seed.map(|(name, _)| name)),
                        seed.map(|(_, path)| path),
                    )?;
                    // The lock is a flock on the directory, so it also holds between strata processes: shared users
                    // hold it shared, so a locked user waits for them and a private one goes elsewhere.
                    match sharing {
                        CacheSharing::Shared | CacheSharing::Locked => {
                            let exclusive = *sharing == CacheSharing::Locked;
                            let lock = tokio::task::block_in_place(|| lock_dir(&dir, exclusive, true))?;
                            holds.locks.extend(lock);
                            dir
                        }
                        CacheSharing::Private => match lock_dir(&dir, true, false)? {
                            Some(lock) => {
                                holds.locks.push(lock);
                                dir
                            }
                            None => cache.create(&holds.fresh_dir(id)?, seed.map(|(_, path)| path))?,
                        },
                    }
                };
                builder.bind(dir, &mount.target, false)
            }
            MountKind::Tmpfs { .. } => builder.tmpfs(&mount.target),
            MountKind::Secret { id, env, required, mode, uid, gid } => {
                let Some(value) = inner.secrets.get(id) else {
                    if *required {
                        return Err(Error::MissingInput(format!("secret {id}: not found")));
                    }
                    continue;
                };
                if let Some(var) = env {
                    builder = builder.env(var, &String::from_utf8_lossy(value));
                }
                if mount.target.is_empty() {
                    builder
                } else {
                    let dir = tempfile::Builder::new()
                        .prefix("strata-secret-")
                        .tempdir()
                        .io_context(|| format!("creating a directory for secret {id}"))?;
                    let file = dir.path().join("secret");
                    fs::write(&file, value).io_context(|| format!("writing secret {id}"))?;
                    fs::set_permissions(&file, fs::Permissions::from_mode(*mode))
                        .io_context(|| format!("setting the mode of secret {id}"))?;
                    std::os::unix::fs::chown(&file, Some(*uid), Some(*gid))
                        .io_context(|| format!("changing the owner of secret {id}"))?;
                    holds.dirs.push(dir);
                    builder.bind(file, &mount.target, true)
                }
            }
            MountKind::Ssh { id, required, mode, uid, gid } => {
                let Some(agent) = inner.ssh.get(id) else {
                    if *required {
                        return Err(Error::MissingInput(format!(
                            "RUN --mount=type=ssh,id={id}: no SSH agent with id {id:?} was given (--ssh {id}=SOCKET)"
                        )));
                    }
                    continue;
                };
                let proxy = AgentProxy::start(agent, id, *mode, *uid, *gid)?;
                let socket = proxy.socket();
                holds.agents.push(proxy);
                builder.bind(socket, &mount.target, true)
            }
        };
    }
    let spec = builder.build().map_err(|source| Error::Runtime { command: command.clone(), source })?;
    let mut container =
        inner.runtime.spawn(&spec).map_err(|source| Error::Runtime { command: command.clone(), source })?;
    let progress = inner.progress.clone();
    let out = container.stdout().map(|s| tokio::spawn(forward_lines(s, Stream::Stdout, progress.clone(), node)));
    let err = container.stderr().map(|s| tokio::spawn(forward_lines(s, Stream::Stderr, progress, node)));
    let code = container.wait().await.map_err(|source| Error::Runtime { command: command.clone(), source })?;
    for task in [out, err].into_iter().flatten() {
        let _ = task.await;
    }
    drop(holds);
    if code != 0 {
        return Err(Error::ProcessFailed { command, code });
    }
    if !stubs.is_empty() {
        tokio::task::block_in_place(|| stubs.remove(&root.writes_dir()?))?;
    }
    Ok(root)
}

/// Sends each line of `stream` to the progress sink.
async fn forward_lines(
    output: impl AsyncRead + Unpin,
    stream: Stream,
    progress: std::sync::Arc<dyn Progress>,
    node: NodeId,
) {
    let mut lines = BufReader::new(output).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        progress.output(node, stream, &line);
    }
}

/// A `RUN --mount=type=cache` as the step asks for it.
struct CacheMount<'a> {
    id: &'a str,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl CacheMount<'_> {
    /// Where the cache persists: `<root>/cache-mounts/<blake3 of the id, and of the seed snapshot if any>`; ids
    /// are free text (often paths), the hash is a safe name.
    fn persistent_dir(&self, root: &Path, seed: Option<&str>) -> PathBuf {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.id.as_bytes());
        if let Some(seed) = seed {
            hasher.update(b"\0from\0").update(seed.as_bytes());
        }
        cache_mounts_dir(root).join(hasher.finalize().to_hex().as_str())
    }

    /// The cache directory `dir`, created the first time with the mount's mode and owner and the seed's files.
    /// It is made under a temporary name and renamed into place, so no build ever sees a half-seeded cache.
    fn create(&self, dir: &Path, seed: Option<&Path>) -> Result<PathBuf> {
        if dir.exists() {
            return Ok(dir.to_owned());
        }
        let id = self.id;
        let parent = dir.parent().expect("cache directories have a parent");
        fs::create_dir_all(parent).io_context(|| format!("creating the parent of cache mount {id}"))?;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(parent)
            .io_context(|| format!("creating cache mount {id}"))?;
        if let Some(seed) = seed {
            copy_tree(seed, staging.path())?;
        }
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(self.mode))
            .io_context(|| format!("setting the mode of cache mount {id}"))?;
        std::os::unix::fs::chown(staging.path(), Some(self.uid), Some(self.gid))
            .io_context(|| format!("changing the owner of cache mount {id}"))?;
        match fs::rename(staging.path(), dir) {
            Ok(()) => {
                // Renamed away: nothing is left for the guard to delete.
                let _ = staging.keep();
                Ok(dir.to_owned())
            }
            // Another step created it first; theirs is as good, and the guard removes ours.
            Err(_) if dir.is_dir() => Ok(dir.to_owned()),
            Err(e) => Err(e).io_context(|| format!("creating cache mount {id}")),
        }
    }
}

/// Proxy variables in both spellings (`HTTP_PROXY` and `http_proxy`), as BuildKit's proxy env sets them,
/// whichever spelling the build arg used.
fn proxy_env(given: &[String]) -> Vec<String> {
    let mut env = Vec::new();
    for entry in given {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        env.push(format!("{}={value}", name.to_ascii_uppercase()));
        env.push(format!("{}={value}", name.to_ascii_lowercase()));
    }
    env
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_network_is_the_hosts() {
        use super::{Network, NetworkMode, network};
        assert_eq!(network(NetworkMode::Default), Network::Host);
        assert_eq!(network(NetworkMode::Host), Network::Host);
        assert_eq!(network(NetworkMode::None), Network::None);
    }

    #[test]
    fn proxy_variables_get_both_spellings() {
        assert_eq!(super::proxy_env(&["http_proxy=h".into()]), ["HTTP_PROXY=h", "http_proxy=h"]);
    }
}
