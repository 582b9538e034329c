//! Remote sources: files downloaded over HTTP(S) and git checkouts. Their cache key depends on the remote's
//! state (a content digest, a commit), so keying may already fetch; what it fetched is kept for the solve
//! rather than fetched twice.

mod git;
mod http;

use strata_llb::SourceOp;

use crate::Inner;
use crate::error::Result;
use crate::snapshot::ActiveTree;

/// A remote source's contribution to its cache key, and the tree fetched to compute it, if any.
pub(crate) struct Keyed {
    /// Stands in for the remote's contents in the cache key.
    pub(crate) part: Vec<u8>,
    /// The fetched tree, when keying had to fetch; dropped (and removed) on a cache hit.
    pub(crate) fetched: Option<ActiveTree>,
    /// What keying resolved that fetching must match (a git ref's commit, a download's digest), so both agree.
    pub(crate) resolved: Option<String>,
}

/// Whether `op` is a remote source, solved by this module.
pub(crate) fn is_remote(op: &SourceOp) -> bool {
    matches!(op, SourceOp::Http { .. } | SourceOp::Git { .. })
}

/// Keys a remote source: an HTTP file by its pinned checksum (no download) or its downloaded digest, a git
/// source by the commit its ref resolves to.
pub(crate) async fn key(inner: &Inner, op: &SourceOp) -> Result<Keyed> {
    match op {
        SourceOp::Http { url, checksum, filename } => {
            let source = http::HttpSource::new(url, checksum.as_deref(), filename.as_deref())?;
            source.key(&inner.snapshotter, &inner.metadata).await
        }
        SourceOp::Git { remote, reference, keep_git_dir, checksum } => {
            git::GitSource::new(remote, reference.as_deref())
                .keep_git_dir(*keep_git_dir)
                .checksum(checksum.as_deref())
                .key()
                .await
        }
        _ => unreachable!("only remote sources are keyed here"),
    }
}

/// The remote source's tree: the one keying fetched, or a fresh fetch.
pub(crate) async fn fetch(inner: &Inner, op: &SourceOp, keyed: Keyed) -> Result<ActiveTree> {
    if let Some(tree) = keyed.fetched {
        return Ok(tree);
    }
    match op {
        SourceOp::Http { url, checksum, filename } => {
            let source = http::HttpSource::new(url, checksum.as_deref(), filename.as_deref())?;
            source.download(&inner.snapshotter, keyed.resolved.as_deref()).await
        }
        SourceOp::Git { remote, reference, keep_git_dir, .. } => {
            let source = git::GitSource::new(remote, reference.as_deref()).keep_git_dir(*keep_git_dir);
            let commit = keyed.resolved.expect("git sources are keyed by their resolved commit");
            source.checkout(&inner.snapshotter, &commit).await
        }
        _ => unreachable!("only remote sources are fetched here"),
    }
}
