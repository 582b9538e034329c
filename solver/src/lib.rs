//! The solver runs a build graph: independent vertices in parallel, identical vertices once, each vertex skipped
//! when its content-addressed cache key is already recorded.
//!
//! Every node's result is a committed snapshot (or nothing, for an empty tree). Build a [`Solver`] with
//! [`Solver::builder`] and call [`Solver::solve`] on a lowered [`Definition`].

mod cache;
mod context;
mod error;
mod exec;
mod external;
mod file;
mod image;
mod merge;
mod scheduler;
mod snapshot;
mod source;
mod ssh;
mod state;
mod stubs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strata_llb::{Definition, NodeId};
use strata_runtime::Runtime;
use strata_snapshotter::{ContentStore, MetadataStore, Snapshotter};

pub use error::{Error, Result};
pub use external::{CacheSource, imported_layer};
pub use image::{ImageSource, SourceImage, StoreImageSource};
pub use snapshot::ReadTree;
pub use state::{StatePruned, prune};

/// Where the solver reports what it does; every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// A node's work starts.
    fn started(&self, _node: NodeId, _description: &str) {}
    /// A line a RUN step printed on `stream`.
    fn output(&self, _node: NodeId, _stream: Stream, _line: &str) {}
    /// A node's result came from the cache.
    fn cached(&self, _node: NodeId, _description: &str) {}
    /// A node's work finished.
    fn finished(&self, _node: NodeId, _elapsed: Duration) {}
    /// A node's work failed.
    fn failed(&self, _node: NodeId, _error: &str) {}
}

/// Which output of a RUN step a line comes from; the numbers are BuildKit's log stream numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Everything a solve uses, shared by its tasks.
pub(crate) struct Inner {
    pub(crate) content: Arc<ContentStore>,
    pub(crate) metadata: Arc<MetadataStore>,
    pub(crate) snapshotter: Arc<dyn Snapshotter>,
    pub(crate) runtime: Runtime,
    pub(crate) images: Arc<dyn ImageSource>,
    pub(crate) root: PathBuf,
    pub(crate) contexts: HashMap<String, PathBuf>,
    pub(crate) secrets: HashMap<String, Vec<u8>>,
    pub(crate) progress: Arc<dyn Progress>,
    pub(crate) parallelism: usize,
    pub(crate) ssh: HashMap<String, PathBuf>,
    pub(crate) allow_insecure: bool,
    pub(crate) cache_sources: Vec<Arc<dyn CacheSource>>,
}

/// Runs build graphs over strata's stores.
pub struct Solver {
    inner: Arc<Inner>,
}

/// Sets up a [`Solver`]; the stores, snapshotter and image source are required.
pub struct SolverBuilder {
    content: Arc<ContentStore>,
    metadata: Arc<MetadataStore>,
    snapshotter: Arc<dyn Snapshotter>,
    images: Arc<dyn ImageSource>,
    root: PathBuf,
    runtime: Runtime,
    contexts: HashMap<String, PathBuf>,
    secrets: HashMap<String, Vec<u8>>,
    progress: Arc<dyn Progress>,
    parallelism: usize,
    ssh: HashMap<String, PathBuf>,
    allow_insecure: bool,
    cache_sources: Vec<Arc<dyn CacheSource>>,
}

impl SolverBuilder {
    /// Sets the runtime RUN steps use (default: this executable as the container init).
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// Names a local context directory (`context` is the main build context).
    pub fn context(mut self, name: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        self.contexts.insert(name.into(), dir.into());
        self
    }

    /// Gives a secret's contents to `RUN --mount=type=secret`; secrets are never stored.
    pub fn secret(mut self, id: impl Into<String>, value: Vec<u8>) -> Self {
        self.secrets.insert(id.into(), value);
        self
    }

    /// Forwards the SSH agent listening on `socket` to `RUN --mount=type=ssh,id=ID`; only the id is part of
    /// the graph, so the socket never reaches a cache key or layer.
    pub fn ssh(mut self, id: impl Into<String>, socket: impl Into<PathBuf>) -> Self {
        self.ssh.insert(id.into(), socket.into());
        self
    }

    /// Grants the `security.insecure` entitlement (`--allow security.insecure`): without it, a graph with a
    /// `RUN --security=insecure` step is refused before anything runs.
    pub fn allow_insecure(mut self, allow: bool) -> Self {
        self.allow_insecure = allow;
        self
    }

    /// Adds an external cache (`--cache-from`), consulted in order when a key has no local record and the node
    /// does not ignore the cache.
    pub fn cache_source(mut self, source: Arc<dyn CacheSource>) -> Self {
        self.cache_sources.push(source);
        self
    }

    /// Sets where progress goes.
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Sets how many nodes may run at once (at least one).
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism.max(1);
        self
    }

    /// Finishes the solver.
    pub fn build(self) -> Solver {
        Solver {
            inner: Arc::new(Inner {
                content: self.content,
                metadata: self.metadata,
                snapshotter: self.snapshotter,
                runtime: self.runtime,
                images: self.images,
                root: self.root,
                contexts: self.contexts,
                secrets: self.secrets,
                progress: self.progress,
                parallelism: self.parallelism,
                ssh: self.ssh,
                allow_insecure: self.allow_insecure,
                cache_sources: self.cache_sources,
            }),
        }
    }
}

impl Solver {
    /// Starts a solver over the stores under `root` (cache mounts go to `<root>/cache-mounts`).
    pub fn builder(
        root: impl Into<PathBuf>,
        content: Arc<ContentStore>,
        metadata: Arc<MetadataStore>,
        snapshotter: Arc<dyn Snapshotter>,
        images: Arc<dyn ImageSource>,
    ) -> SolverBuilder {
        SolverBuilder {
            content,
            metadata,
            snapshotter,
            images,
            root: root.into(),
            runtime: Runtime::new(),
            contexts: HashMap::new(),
            secrets: HashMap::new(),
            progress: Arc::new(NoProgress),
            parallelism: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            ssh: HashMap::new(),
            allow_insecure: false,
            cache_sources: Vec::new(),
        }
    }

    /// Runs every node the definition's root and steps need; must be called on a multi-threaded tokio runtime.
    pub async fn solve(&self, definition: &Definition) -> Result<Solved> {
        exec::check_entitlements(&self.inner, definition)?;
        scheduler::solve(self.inner.clone(), definition).await
    }

    /// The content store the solver writes to (the exporter reads layers from it).
    pub fn content(&self) -> &Arc<ContentStore> {
        &self.inner.content
    }

    /// The metadata store (snapshot records, cache records, image names).
    pub fn metadata(&self) -> &Arc<MetadataStore> {
        &self.inner.metadata
    }

    /// The snapshotter results live in.
    pub fn snapshotter(&self) -> &Arc<dyn Snapshotter> {
        &self.inner.snapshotter
    }
}

/// One node's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResult {
    /// The committed snapshot holding the node's tree; `None` for an empty tree.
    pub snapshot: Option<String>,
    /// The node's cache key.
    pub key: String,
    /// Whether the result came from the cache.
    pub cached: bool,
}

/// What a solve produced.
#[derive(Debug, Clone, Default)]
pub struct Solved {
    /// Every solved node's result.
    pub results: HashMap<NodeId, NodeResult>,
    /// The resolved image of every image source node.
    pub images: HashMap<NodeId, SourceImage>,
    /// How many RUN steps actually ran (not cached).
    pub executed: usize,
}

impl Solved {
    /// The snapshot of `node` (`None`: empty tree or not solved).
    pub fn snapshot(&self, node: NodeId) -> Option<&str> {
        self.results.get(&node).and_then(|r| r.snapshot.as_deref())
    }
}
