//! Runs the nodes of a definition in dependency order: a node starts as soon as its inputs are done, at most
//! `parallelism` at once. The first failure cancels the rest: running processes are killed, their snapshots
//! removed, and nothing unfinished is ever recorded in the cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use strata_llb::{Definition, ExecOp, FileAction, Graph, MountKind, Node, NodeId, Op, SourceOp};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cache::{self, KeyBuilder};
use crate::context::{self, ContextFilter, ContextHashes, Selection};
use crate::error::{Error, Result};
use crate::external::{self, Imported};
use crate::snapshot::{ReadTree, unique_key};
use crate::{Inner, NodeResult, Solved, SourceImage, Stream, exec, file, merge, source};

/// What one node's task hands back.
struct Outcome {
    node: NodeId,
    result: NodeResult,
    image: Option<SourceImage>,
    executed: bool,
}

/// Solves everything `definition` needs.
pub(crate) async fn solve(inner: Arc<Inner>, definition: &Definition) -> Result<Solved> {
    let mut roots: Vec<NodeId> = definition.root.into_iter().collect();
    roots.extend(definition.steps.iter().filter_map(|s| s.node));
    roots.extend(definition.base.iter().map(|b| b.node));
    let graph = Arc::new(definition.graph.clone());
    let needed = graph.reachable(&roots);
    let mut waiting: HashMap<NodeId, usize> = needed.iter().map(|&id| (id, graph.node(id).inputs.len())).collect();
    let mut dependents: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &id in &needed {
        for &input in &graph.node(id).inputs {
            dependents.entry(input).or_default().push(id);
        }
    }
    let permits = Arc::new(Semaphore::new(inner.parallelism));
    let hashes = Arc::new(ContextHashes::new(&inner.root));
    let mut solved = Solved::default();
    let mut tasks = JoinSet::new();
    let mut ready: Vec<NodeId> = needed.iter().copied().filter(|id| waiting[id] == 0).collect();
    loop {
        for id in ready.drain(..) {
            let inputs: Vec<NodeResult> =
                graph.node(id).inputs.iter().map(|input| solved.results[input].clone()).collect();
            let (inner, graph, permits, hashes) = (inner.clone(), graph.clone(), permits.clone(), hashes.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
                solve_node(&inner, &hashes, &graph, id, &inputs).await
            });
        }
        let Some(joined) = tasks.join_next().await else { break };
        let outcome = match joined {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => return Err(error),
            // Only a panic gets here (nothing aborts tasks while the set is alive).
            Err(e) => {
                let steps = unfinished(&graph, &solved, &needed);
                return Err(Error::Task { steps, reason: e.to_string() });
            }
        };
        for &dependent in dependents.get(&outcome.node).into_iter().flatten() {
            let count = waiting.get_mut(&dependent).expect("dependents are needed nodes");
            *count -= 1;
            if *count == 0 {
                ready.push(dependent);
            }
        }
        solved.executed += usize::from(outcome.executed);
        if let Some(image) = outcome.image {
            solved.images.insert(outcome.node, image);
        }
        solved.results.insert(outcome.node, outcome.result);
    }
    Ok(solved)
}

/// The steps not finished when a task panicked, for the error message.
fn unfinished(graph: &Graph, solved: &Solved, needed: &[NodeId]) -> String {
    let running: Vec<&str> = needed
        .iter()
        .filter(|id| !solved.results.contains_key(id))
        .map(|&id| graph.node(id).meta.description.as_str())
        .collect();
    running.join(", ")
}

/// Solves one node whose inputs are solved, reporting progress.
async fn solve_node(
    inner: &Inner,
    hashes: &ContextHashes,
    graph: &Graph,
    id: NodeId,
    inputs: &[NodeResult],
) -> Result<Outcome> {
    let node = graph.node(id);
    let started = Instant::now();
    let outcome = solve_op(inner, hashes, graph, node, inputs).await;
    match &outcome {
        Ok(o) if o.result.cached => inner.progress.cached(id, &node.meta.description),
        Ok(_) => inner.progress.finished(id, started.elapsed()),
        Err(e) => inner.progress.failed(id, &e.to_string()),
    }
    outcome
}

async fn solve_op(
    inner: &Inner,
    hashes: &ContextHashes,
    graph: &Graph,
    node: &Node,
    inputs: &[NodeResult],
) -> Result<Outcome> {
    let snapshots: Vec<Option<String>> = inputs.iter().map(|r| r.snapshot.clone()).collect();
    if let Op::Source(SourceOp::Image { reference, platform }) = &node.op {
        // Image layers are unpacked once by chain ID; the source itself needs no cache record.
        inner.progress.started(node.id, &node.meta.description);
        let image = tokio::task::block_in_place(|| inner.images.resolve(reference, platform))?;
        let snapshot = tokio::task::block_in_place(|| inner.images.unpack(&image))?;
        let key = KeyBuilder::new(&node.digest.0).input(image.manifest_digest.to_string().as_bytes()).finish();
        let result = NodeResult { snapshot, key, cached: false };
        return Ok(Outcome { node: node.id, result, image: Some(image), executed: false });
    }
    let (key, remote) = match &node.op {
        Op::Source(op) if source::is_remote(op) => {
            // Keying may download the whole file: show the step as running meanwhile.
            inner.progress.started(node.id, &node.meta.description);
            let keyed = source::key(inner, op).await?;
            (KeyBuilder::new(&node.digest.0).input(&keyed.part).finish(), Some(keyed))
        }
        _ => (tokio::task::block_in_place(|| cache_key(inner, hashes, graph, node, inputs))?, None),
    };
    let mut warning = None;
    if !node.meta.ignore_cache {
        let found = tokio::task::block_in_place(|| match cache::lookup(&inner.metadata, &key)? {
            Some(snapshot) => Ok(Imported::Hit(snapshot)),
            None => external::lookup(inner, &key),
        })?;
        match found {
            Imported::Hit(snapshot) => {
                let result = NodeResult { snapshot, key, cached: true };
                return Ok(Outcome { node: node.id, result, image: None, executed: false });
            }
            Imported::Unusable(reason) => warning = Some(reason),
            Imported::Miss => {}
        }
    }
    if remote.is_none() {
        inner.progress.started(node.id, &node.meta.description);
    }
    if let Some(warning) = warning {
        inner.progress.output(node.id, Stream::Stderr, &format!("WARNING: {warning}; running the step"));
    }
    let active = match &node.op {
        Op::Exec(exec_op) => exec::run(inner, node.id, exec_op, &snapshots, node.meta.ignore_cache).await?,
        Op::File(file_op) => tokio::task::block_in_place(|| file::solve(&inner.snapshotter, file_op, &snapshots))?,
        Op::Merge => tokio::task::block_in_place(|| merge::run(&inner.snapshotter, &snapshots))?,
        Op::Source(SourceOp::Local { name, include, exclude }) => tokio::task::block_in_place(|| {
            let (dir, filter) = local_context(inner, name, include, exclude)?;
            context::solve(&inner.snapshotter, dir, &filter)
        })?,
        Op::Source(op) => source::fetch(inner, op, remote.expect("remote sources are keyed above")).await?,
    };
    let name = unique_key("build");
    tokio::task::block_in_place(|| {
        active.commit(&name)?;
        cache::record(&inner.metadata, &key, Some(&name))
    })?;
    let result = NodeResult { snapshot: Some(name), key, cached: false };
    Ok(Outcome { node: node.id, result, image: None, executed: matches!(node.op, Op::Exec(_)) })
}

/// The directory of the local context `name` and the filter of a source's patterns over it, which never walks
/// into the state root.
fn local_context<'a>(
    inner: &'a Inner,
    name: &str,
    include: &[String],
    exclude: &[String],
) -> Result<(&'a std::path::Path, ContextFilter)> {
    let dir = inner
        .contexts
        .get(name)
        .ok_or_else(|| Error::MissingInput(format!("no local context named {name:?} was given")))?;
    Ok((dir, ContextFilter::new(include, exclude)?.skipping(&inner.root)))
}

/// The node's cache key: digest and input keys, where a context input of a file op counts only through the
/// files the copies select, and a context source through its filtered contents.
fn cache_key(
    inner: &Inner,
    hashes: &ContextHashes,
    graph: &Graph,
    node: &Node,
    inputs: &[NodeResult],
) -> Result<String> {
    let mut key = KeyBuilder::new(&node.digest.0);
    if let Op::Source(SourceOp::Local { name, include, exclude }) = &node.op {
        let (dir, filter) = local_context(inner, name, include, exclude)?;
        return Ok(key.input(&hashes.checksum(dir, &filter)?.digest).finish());
    }
    for (index, (input, result)) in node.inputs.iter().zip(inputs).enumerate() {
        let part = match (&node.op, &graph.node(*input).op) {
            (Op::File(file_op), Op::Source(SourceOp::Local { name, include, exclude }))
                if file_op.base != Some(index) =>
            {
                let sources: Vec<String> = file_op
                    .actions
                    .iter()
                    .filter_map(|a| match a {
                        FileAction::Copy(copy) if copy.input == Some(index) => Some(copy.sources.clone()),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                let (dir, filter) = local_context(inner, name, include, exclude)?;
                hashes.checksum_selection(dir, &filter, &sources)?.digest.to_vec()
            }
            (Op::Exec(exec_op), _) => match bind_selectors(exec_op, index) {
                Some(selectors) => mount_checksum(inner, result.snapshot.as_deref(), &selectors)?.to_vec(),
                None => result.key.as_bytes().to_vec(),
            },
            _ => result.key.as_bytes().to_vec(),
        };
        key = key.input(&part);
    }
    Ok(key.finish())
}

/// The selectors of input `index` when it is used only as a bind mount other than the root, whose cache key
/// then depends on the mounted content rather than on how it was made, as in BuildKit.
fn bind_selectors(exec_op: &ExecOp, index: usize) -> Option<Vec<String>> {
    let uses: Vec<_> = exec_op.mounts.iter().enumerate().filter(|(_, m)| m.input == Some(index)).collect();
    let only_binds = !uses.is_empty() && uses.iter().all(|(i, m)| *i > 0 && m.kind == MountKind::Bind);
    only_binds.then(|| uses.iter().map(|(_, m)| m.selector.clone().unwrap_or_else(|| "/".into())).collect())
}

/// The checksum of what `selectors` select in the snapshot (`None`: the empty tree). Snapshots are immutable
/// and keyed already, so nothing about their files is remembered.
fn mount_checksum(inner: &Inner, snapshot: Option<&str>, selectors: &[String]) -> Result<[u8; 32]> {
    let tree = ReadTree::open(&inner.snapshotter, snapshot)?;
    let everything = ContextFilter::new(&[], &[])?;
    let mut selection = Selection::default();
    for selector in selectors {
        selection.label(selector.as_bytes());
        let path = file::resolve_in_root(tree.path(), selector, true)?;
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => selection.walk(&path, &path, &everything)?,
            Ok(meta) => selection.entry("", &path, &meta),
            Err(_) => selection.label(b"\0missing"),
        }
    }
    Ok(selection.checksum(None)?.digest)
}
