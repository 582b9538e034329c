//! Named build contexts (`--build-context NAME=VALUE`): a name that stands for an image or a local directory
//! wherever the Dockerfile names it: a stage of that name (replaced, instructions and all), `FROM NAME`,
//! `COPY --from=NAME` and `RUN --mount=from=NAME`, as BuildKit's named contexts do
//! (frontend/dockerui/namedcontext.go, frontend/dockerfile/dockerfile2llb/convert.go).

use strata_llb::{NodeId, NodeMeta, Op, Platform, SourceOp};

use super::dispatch::{Lowering, StageState};
use super::stages::Stage;
use crate::error::Error;
use crate::parser::Node;

/// What a named context stands for; the lowering only turns it into graph nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// An image reference, resolved as a FROM reference is (`scratch` is the empty tree).
    Image(String),
    /// A directory the solver knows as the local source `name`, filtered by `exclude` (its `.dockerignore`).
    Local {
        /// The local source's name, which the solver maps to the directory.
        name: String,
        /// Patterns left out, as in `.dockerignore`.
        exclude: Vec<String>,
    },
}

/// The key a context name or a Dockerfile word is looked up by: Docker's familiar form without `:latest`, so
/// `docker.io/library/alpine:latest` and `alpine` are one name, as BuildKit's dockerui `NamedContext` does.
pub(crate) fn context_key(name: &str) -> String {
    let familiar = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(name);
    match familiar.strip_suffix(":latest") {
        Some(untagged) if !untagged.contains('@') => untagged.to_owned(),
        _ => familiar.to_owned(),
    }
}

impl Lowering<'_> {
    /// The named context `word` (a stage name, FROM image or `--from` value) stands for, if any.
    pub(super) fn named_context(&self, word: &str) -> Option<NamedContext> {
        self.options.named_contexts.get(&context_key(word)).cloned()
    }

    /// The state a stage starts from when a named context is its base or replaces it: the image's, or for a
    /// directory an empty image whose one layer is the directory.
    pub(super) fn context_state(
        &mut self,
        context: NamedContext,
        stage: &Stage,
        platform: Platform,
    ) -> Result<StageState, Error> {
        match context {
            NamedContext::Image(reference) => self.base_state(stage, &reference, platform),
            NamedContext::Local { name, exclude } => {
                let mut state = self.base_state(stage, "scratch", platform)?;
                let node = self.local_context(&name, exclude);
                state.root = Some(node);
                state.record(format!("[context {name}] load from client"), Some(node));
                Ok(state)
            }
        }
    }

    /// The filesystem of a named context for `COPY --from` and `RUN --mount=from` (`None`: empty).
    pub(super) fn context_root(
        &mut self,
        context: NamedContext,
        node: &Node,
        platform: &Platform,
    ) -> Result<Option<NodeId>, Error> {
        match context {
            NamedContext::Image(reference) if reference.eq_ignore_ascii_case("scratch") => Ok(None),
            NamedContext::Image(reference) => Ok(Some(self.image(node, &reference, platform)?)),
            NamedContext::Local { name, exclude } => Ok(Some(self.local_context(&name, exclude))),
        }
    }

    /// The local source node of a directory context.
    fn local_context(&mut self, name: &str, exclude: Vec<String>) -> NodeId {
        let op = Op::Source(SourceOp::Local { name: name.to_owned(), include: Vec::new(), exclude });
        let meta = NodeMeta { description: format!("[context {name}] load from client"), ..Default::default() };
        self.graph.add(op, Vec::new(), meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_familiar_names_without_latest() {
        assert_eq!(context_key("docker.io/library/alpine:latest"), "alpine");
        assert_eq!(context_key("alpine"), "alpine");
        assert_eq!(context_key("docker.io/org/app:v1"), "org/app:v1");
        assert_eq!(context_key("ghcr.io/org/app:latest"), "ghcr.io/org/app");
        assert_eq!(context_key("build"), "build");
    }
}
