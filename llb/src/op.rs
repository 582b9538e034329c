//! The ops of the build graph. Field order and names are part of the canonical encoding: changing them
//! changes every digest, so `graph::ENCODING` is bumped with any change here.

use serde::{Deserialize, Serialize};

/// One unit of work; its inputs are the node's `inputs`, referred to by index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Op {
    /// Brings in a filesystem from outside the build.
    Source(SourceOp),
    /// Runs a process over its mounts.
    Exec(ExecOp),
    /// Changes files: copy, mkdir, mkfile, rm, symlink.
    File(FileOp),
    /// Layers its inputs on each other in order, later over earlier (`COPY --link` results over a base).
    Merge,
}

/// Where a source filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum SourceOp {
    /// An image's root filesystem; `reference` is normalised, `platform` the one to pick from an index.
    Image { reference: String, platform: crate::Platform },
    /// A directory the client sends (`context` or a named context), filtered by the patterns.
    Local { name: String, include: Vec<String>, exclude: Vec<String> },
    /// A file downloaded over HTTP(S), optionally pinned by checksum.
    Http { url: String, checksum: Option<String>, filename: Option<String> },
    /// A git repository at a ref; `checksum` is a commit (or tag object) SHA prefix the ref must resolve to.
    Git { remote: String, reference: Option<String>, keep_git_dir: bool, checksum: Option<String> },
}

/// A process run over a root filesystem and further mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `KEY=value` environment, in order.
    pub env: Vec<String>,
    /// Working directory inside the root.
    pub cwd: String,
    /// User as given (`name`, `uid`, `uid:gid`); empty for root.
    pub user: String,
    /// Network the process gets.
    pub network: NetworkMode,
    /// Privilege level.
    pub security: SecurityMode,
    /// Mounts in mount order; the first is the root filesystem at `/`.
    pub mounts: Vec<ExecMount>,
    /// Proxy variables from build args (`HTTP_PROXY`, ...): passed to the process, but left out of the
    /// encoding and so of the digest, as BuildKit keeps them out of cache keys (they may also hold credentials).
    #[serde(skip)]
    pub proxy_env: Vec<String>,
}

/// A mount of an exec op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecMount {
    /// Absolute path inside the container; empty for a secret exposed only as an environment variable.
    pub target: String,
    /// Index into the node's inputs; `None` for scratch (an empty directory).
    pub input: Option<usize>,
    /// Path inside the input to mount instead of its root.
    pub selector: Option<String>,
    /// Whether the mount is read-only.
    pub readonly: bool,
    /// Whether what the process writes here is a result of the op (the root mount, rw binds are not).
    pub output: bool,
    /// What kind of mount this is.
    pub kind: MountKind,
}

/// The kinds of `RUN --mount`, plus plain binds of inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MountKind {
    /// An input's filesystem.
    Bind,
    /// A persistent cache directory shared between builds by `id`.
    Cache { id: String, sharing: CacheSharing, mode: u32, uid: u32, gid: u32 },
    /// An empty in-memory filesystem.
    Tmpfs { size: Option<u64> },
    /// A secret as a file (at `target`) or an environment variable; only its id is in the graph.
    Secret { id: String, env: Option<String>, required: bool, mode: u32, uid: u32, gid: u32 },
    /// A forwarded SSH agent socket.
    Ssh { id: String, required: bool, mode: u32, uid: u32, gid: u32 },
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    /// Everyone uses the same directory at once.
    Shared,
    /// A second user gets a fresh directory.
    Private,
    /// A second user waits.
    Locked,
}

/// Network namespace of an exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The builder's default (the host's network for strata, as BuildKit's OCI worker with host networking).
    #[default]
    Default,
    /// The host's network.
    Host,
    /// Only a loopback interface.
    None,
}

/// Privileges of an exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityMode {
    /// Docker's default capabilities.
    #[default]
    Sandbox,
    /// All capabilities (`RUN --security=insecure`).
    Insecure,
}

/// File changes applied to a base filesystem (input `base`, or scratch when `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    /// Index of the input the actions start from; `None` starts from an empty tree.
    pub base: Option<usize>,
    /// Actions in order.
    pub actions: Vec<FileAction>,
}

/// One change of a file op. Paths are absolute inside the base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum FileAction {
    /// Copies from another input (or the context).
    Copy(CopyAction),
    /// Creates a directory.
    Mkdir { path: String, mode: u32, make_parents: bool, chown: Option<Chown> },
    /// Creates a file with the given contents (heredocs).
    Mkfile { path: String, mode: u32, data: String, chown: Option<Chown> },
    /// Removes a path.
    Rm { path: String, allow_not_found: bool, allow_wildcard: bool },
    /// Creates a symbolic link.
    Symlink { target: String, link: String },
}

/// A copy from one of the node's inputs into the base, with COPY/ADD's options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Index of the input holding the sources; `None` copies from an empty tree.
    pub input: Option<usize>,
    /// Source paths or wildcard patterns inside the input.
    pub sources: Vec<String>,
    /// Destination; a trailing `/` means "into this directory".
    pub dest: String,
    /// Owner to set on copied files (`--chown`), as given; resolved against the destination's passwd.
    pub chown: Option<Chown>,
    /// Mode to set (`--chmod`), octal or symbolic as given.
    pub chmod: Option<String>,
    /// Keep the source's parent directories (`--parents`).
    pub parents: bool,
    /// Patterns excluded from the copy (`--exclude`).
    pub exclude: Vec<String>,
    /// Extract local archives (ADD).
    pub unpack: bool,
    /// Follow a symlink given as a source.
    pub follow_symlinks: bool,
    /// A directory source copies its contents, not itself.
    pub dir_contents_only: bool,
    /// Sources may be wildcards.
    pub allow_wildcard: bool,
    /// A wildcard may match nothing.
    pub allow_empty_wildcard: bool,
    /// Create missing parents of the destination.
    pub create_dest_path: bool,
}

/// An owner as written in `--chown` or a mkdir: user and optional group, names or ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chown {
    /// User name or numeric id.
    pub user: String,
    /// Group name or numeric id; the user's primary group when `None`.
    pub group: Option<String>,
}

impl Op {
    /// A short human label: `exec`, `file`, `merge`, or the source kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Source(SourceOp::Image { .. }) => "source:image",
            Op::Source(SourceOp::Local { .. }) => "source:local",
            Op::Source(SourceOp::Http { .. }) => "source:http",
            Op::Source(SourceOp::Git { .. }) => "source:git",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
            Op::Merge => "merge",
        }
    }
}
