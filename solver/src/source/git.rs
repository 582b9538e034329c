//! `ADD <git remote>#<ref>:<subdir>`: the ref is resolved to a commit with `git ls-remote` (the cache key, as
//! in BuildKit's git source), then fetched shallowly where the server allows it and checked out with the `git`
//! CLI inside the new snapshot. `.git` is dropped unless `--keep-git-dir`; no hooks run and git never prompts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use strata_llb::urls::redact_credentials;
use strata_snapshotter::Snapshotter;

use super::Keyed;
use crate::error::{Error, IoContext, Result};
use crate::snapshot::ActiveTree;

/// One git source as the frontend lowered it.
pub(crate) struct GitSource<'a> {
    remote: &'a str,
    reference: Option<&'a str>,
    subdir: Option<String>,
    keep_git_dir: bool,
    checksum: Option<&'a str>,
}

impl<'a> GitSource<'a> {
    /// A source for `remote` at `reference`, written `ref`, `ref:subdir` or `:subdir` as after `#` in ADD.
    pub(crate) fn new(remote: &'a str, reference: Option<&'a str>) -> Self {
        let (reference, subdir) = match reference.map(|r| r.split_once(':').unwrap_or((r, ""))) {
            Some((reference, subdir)) => (Some(reference).filter(|r| !r.is_empty()), subdir),
            None => (None, ""),
        };
        let subdir = subdir.trim_matches('/');
        let subdir = (!subdir.is_empty() && subdir != ".").then(|| subdir.to_owned());
        Self { remote, reference, subdir, keep_git_dir: false, checksum: None }
    }

    /// Keeps `.git` in the result (`ADD --keep-git-dir`); only without a subdirectory, as in BuildKit.
    pub(crate) fn keep_git_dir(mut self, keep: bool) -> Self {
        self.keep_git_dir = keep;
        self
    }

    /// Pins the source (`ADD --checksum`): the commit, or an annotated tag's object, must start with it.
    pub(crate) fn checksum(mut self, checksum: Option<&'a str>) -> Self {
        self.checksum = checksum;
        self
    }

    /// Keys the source by the commit its ref resolves to (a full commit SHA needs no lookup), plus whether
    /// `.git` is kept and the subdirectory, as BuildKit's `shaToCacheKey`.
    pub(crate) async fn key(&self) -> Result<Keyed> {
        let (commit, tag) = self.resolve().await?;
        if let Some(checksum) = self.checksum {
            let wanted = checksum.to_ascii_lowercase();
            if !(commit.starts_with(&wanted) || tag.as_ref().is_some_and(|t| t.starts_with(&wanted))) {
                let got = tag.map(|t| format!("{t} or {commit}")).unwrap_or_else(|| commit.clone());
                return Err(self.error(format!("expected checksum to match {checksum}, got {got}")));
            }
        }
        let mut part = format!("git\0{commit}");
        if self.keep_git_dir {
            part.push_str(".git");
        }
        if let Some(subdir) = &self.subdir {
            part.push(':');
            part.push_str(subdir);
        }
        Ok(Keyed { part: part.into_bytes(), fetched: None, resolved: Some(commit) })
    }

    /// The commit `reference` (default: the remote's HEAD) names now, and the tag object for an annotated tag.
    async fn resolve(&self) -> Result<(String, Option<String>)> {
        let wanted = self.reference.unwrap_or("HEAD");
        if is_commit(wanted) {
            return Ok((wanted.to_owned(), None));
        }
        // Patterns match whole ref names, so an annotated tag's peeled entry needs its own.
        let peeled = format!("{wanted}^{{}}");
        let listing = self.git(None, &["ls-remote", "--", self.remote, wanted, &peeled]).await?;
        pick_ref(&listing, wanted).ok_or_else(|| self.error(format!("the repository has no ref {wanted:?}")))
    }

    /// Checks out `commit` into a new snapshot: only `subdir`'s contents when one is given.
    pub(crate) async fn checkout(&self, snapshotter: &Arc<dyn Snapshotter>, commit: &str) -> Result<ActiveTree> {
        let (tree, dest) = tokio::task::block_in_place(|| -> Result<_> {
            let mut tree = ActiveTree::prepare(snapshotter, None)?;
            let dest = tree.mount()?;
            Ok((tree, dest))
        })?;
        // Inside the snapshot, so moving the checkout into place is a rename.
        let work = tempfile::Builder::new()
            .prefix(".strata-git-")
            .tempdir_in(&dest)
            .io_context(|| format!("creating a checkout directory in {}", dest.display()))?;
        let dir = Some(work.path());
        // No template: a fresh repository has no hooks to run.
        self.git(dir, &["init", "-q", "--template="]).await?;
        self.git(dir, &["remote", "add", "origin", self.remote]).await?;
        self.fetch(work.path(), commit).await?;
        self.git(dir, &["-c", "advice.detachedHead=false", "checkout", "-q", commit]).await.map_err(|e| {
            self.error(format!("checking out {commit} (did {} move during the build?): {e}", self.describe_ref()))
        })?;
        if work.path().join(".gitmodules").exists() {
            self.git(dir, &["submodule", "update", "--init", "--recursive", "--depth=1"]).await?;
        }
        let keep_git_dir = self.keep_git_dir && self.subdir.is_none();
        if keep_git_dir {
            self.git(dir, &["remote", "set-url", "origin", &redact_credentials(self.remote)]).await?;
            let fetch_head = work.path().join(".git/FETCH_HEAD");
            std::fs::remove_file(&fetch_head).io_context(|| format!("removing {}", fetch_head.display()))?;
        }
        let source = match &self.subdir {
            Some(subdir) => work.path().join(subdir),
            None => work.path().to_owned(),
        };
        if !source.is_dir() {
            let subdir = self.subdir.as_deref().unwrap_or_default();
            return Err(self.error(format!("no directory {subdir:?} at {commit}")));
        }
        move_entries(&source, &dest, keep_git_dir)?;
        work.close().io_context(|| format!("removing the checkout directory in {}", dest.display()))?;
        Ok(tree)
    }

    /// Fetches `commit` shallowly; servers that cannot (dumb HTTP, unadvertised commits) get a full fetch.
    async fn fetch(&self, dir: &Path, commit: &str) -> Result<()> {
        let dir = Some(dir);
        let wanted = if self.reference.is_some_and(is_commit) { commit } else { self.reference.unwrap_or("HEAD") };
        if self.git(dir, &["fetch", "-q", "--depth=1", "--no-tags", "origin", wanted]).await.is_ok() {
            return Ok(());
        }
        if !is_commit(wanted) && self.git(dir, &["fetch", "-q", "--no-tags", "origin", wanted]).await.is_ok() {
            return Ok(());
        }
        self.git(dir, &["fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*"]).await.map(drop)
    }

    /// Runs git (in `dir`, if given) and returns its standard output; never prompts, never runs hooks.
    async fn git(&self, dir: Option<&Path>, args: &[&str]) -> Result<String> {
        let mut command = tokio::process::Command::new("git");
        command.args(["-c", "core.hooksPath=/dev/null"]);
        if let Some(dir) = dir {
            command.arg("-C").arg(dir);
        }
        command.args(args).env("GIT_TERMINAL_PROMPT", "0").stdin(Stdio::null());
        if std::env::var_os("GIT_SSH_COMMAND").is_none() {
            command.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        }
        let output = command.output().await.map_err(|e| self.error(format!("running git (is it installed?): {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).replace(self.remote, &redact_credentials(self.remote));
            return Err(self.error(format!("git {} failed: {}", args[0], stderr.trim())));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn describe_ref(&self) -> String {
        self.reference.unwrap_or("HEAD").to_owned()
    }

    fn error(&self, reason: String) -> Error {
        Error::Remote { url: redact_credentials(self.remote), reason }
    }
}

/// Whether `reference` is a full commit SHA (nothing to resolve).
fn is_commit(reference: &str) -> bool {
    reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The commit `wanted` names in `git ls-remote` output, and for an annotated tag the tag object too (its
/// peeled `^{}` entry is the commit); `main` matches `refs/heads/main` and `refs/tags/main`.
fn pick_ref(listing: &str, wanted: &str) -> Option<(String, Option<String>)> {
    let entries: Vec<(&str, &str)> = listing.lines().filter_map(|line| line.split_once('\t')).collect();
    let matches = |name: &str| name == wanted || name.ends_with(&format!("/{wanted}"));
    let plain = entries.iter().find(|(_, name)| matches(name)).map(|(sha, _)| (*sha).to_owned());
    let peeled = entries.iter().find(|(_, name)| name.strip_suffix("^{}").is_some_and(matches));
    let (commit, tag) = match peeled {
        Some((commit, _)) => ((*commit).to_owned(), plain),
        None => (plain?, None),
    };
    is_commit(&commit).then_some((commit, tag))
}

/// Moves every entry of `source` into `dest`; `.git` only when kept.
fn move_entries(source: &Path, dest: &Path, keep_git_dir: bool) -> Result<()> {
    let entries = std::fs::read_dir(source).io_context(|| format!("reading {}", source.display()))?;
    for entry in entries {
        let entry = entry.io_context(|| format!("reading {}", source.display()))?;
        let name = entry.file_name();
        if name == ".git" && !keep_git_dir {
            continue;
        }
        let target: PathBuf = dest.join(&name);
        std::fs::rename(entry.path(), &target)
            .io_context(|| format!("moving {} to {}", entry.path().display(), target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_ref_and_subdir() {
        let s = GitSource::new("r", Some("v1:docs/"));
        assert_eq!((s.reference, s.subdir.as_deref()), (Some("v1"), Some("docs")));
        let s = GitSource::new("r", Some(":sub"));
        assert_eq!((s.reference, s.subdir.as_deref()), (None, Some("sub")));
        let s = GitSource::new("r", Some("main"));
        assert_eq!((s.reference, s.subdir.as_deref()), (Some("main"), None));
    }

    #[test]
    fn ls_remote_output_picks_the_commit() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let listing = format!("{a}\trefs/tags/v1\n{b}\trefs/tags/v1^{{}}\n");
        assert_eq!(pick_ref(&listing, "v1"), Some((b.clone(), Some(a.clone()))));
        let listing = format!("{a}\trefs/heads/main\n{b}\trefs/heads/other-main\n");
        assert_eq!(pick_ref(&listing, "main"), Some((a.clone(), None)));
        assert_eq!(pick_ref(&format!("{a}\tHEAD\n"), "HEAD"), Some((a, None)));
        assert_eq!(pick_ref("", "main"), None);
    }
}
