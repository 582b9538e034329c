//! Lowering: a parsed Dockerfile becomes a build graph ([`strata_llb::Definition`]) for one target stage,
//! with BuildKit's rules for ARG/ENV scoping, stages and `--target` (stages the target does not reach are
//! never resolved).

mod args;
mod contexts;
mod copy;
mod dispatch;
mod expose;
mod outline;
mod run;
mod stages;

use std::collections::BTreeMap;

use strata_llb::{Definition, ImageConfig, NetworkMode, Platform};

use crate::error::Error;
use crate::parser::Ast;

pub use contexts::NamedContext;
pub use outline::{Outline, OutlineArg, OutlineSecret, StageSummary, outline, targets};

/// Looks up base images while lowering, so their configuration (ENV, WORKDIR, USER, ONBUILD) is known.
pub trait ImageResolver {
    /// Resolves `reference` (as written after ARG expansion) for `platform`.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String>;
}

/// A base image as the lowering needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The canonical reference the image source op should use (normalised, ideally pinned by digest).
    pub reference: String,
    /// The image's configuration.
    pub config: ImageConfig,
}

/// A resolver that looks nothing up: references stay as written and configs are empty. For printing the graph
/// or an outline without touching a registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unresolved;

impl ImageResolver for Unresolved {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<ResolvedImage, String> {
        Ok(ResolvedImage { reference: reference.to_owned(), config: ImageConfig::default() })
    }
}

/// What to build and with which inputs, as `strata build` flags set it.
#[derive(Debug, Clone)]
pub struct LowerOptions {
    build_args: BTreeMap<String, String>,
    target: Option<String>,
    labels: BTreeMap<String, String>,
    target_platform: Platform,
    build_platform: Platform,
    no_cache: bool,
    no_cache_filter: Vec<String>,
    ignore_patterns: Vec<String>,
    named_contexts: BTreeMap<String, NamedContext>,
    network: NetworkMode,
}

impl Default for LowerOptions {
    fn default() -> Self {
        Self {
            build_args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            target_platform: Platform::host(),
            build_platform: Platform::host(),
            no_cache: false,
            no_cache_filter: Vec::new(),
            ignore_patterns: Vec::new(),
            named_contexts: BTreeMap::new(),
            network: NetworkMode::Default,
        }
    }
}

impl LowerOptions {
    /// Sets the network of RUN steps that do not choose one (`--network`); it is part of each step's op, so of
    /// its cache key, as in BuildKit.
    pub fn network(mut self, network: NetworkMode) -> Self {
        self.network = network;
        self
    }

    /// Default options: the last stage, host platform, no build args.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a build arg (`--build-arg K=V`); an empty value is a real, empty value.
    pub fn build_arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.build_args.insert(name.into(), value.into());
        self
    }

    /// Chooses the target stage by name (any case).
    pub fn target(mut self, target: Option<String>) -> Self {
        self.target = target;
        self
    }

    /// Adds an image label (`--label K=V`), applied after the Dockerfile's own.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Sets the platform the image is built for.
    pub fn target_platform(mut self, platform: Platform) -> Self {
        self.target_platform = platform;
        self
    }

    /// Ignores cached results for every step (`--no-cache`).
    pub fn no_cache(mut self, no_cache: bool) -> Self {
        self.no_cache = no_cache;
        self
    }

    /// Ignores cached results for the steps of these stages (`--no-cache-filter`).
    pub fn no_cache_filter(mut self, stages: Vec<String>) -> Self {
        self.no_cache_filter = stages.into_iter().map(|s| s.to_lowercase()).collect();
        self
    }

    /// The `.dockerignore` patterns filtering the build context.
    pub fn ignore_patterns(mut self, patterns: Vec<String>) -> Self {
        self.ignore_patterns = patterns;
        self
    }

    /// Names a build context (`--build-context NAME=VALUE`): it replaces a stage called `name`, and stands for
    /// `name` in FROM, `COPY --from` and `RUN --mount=from`; `alpine` and `docker.io/library/alpine:latest`
    /// are one name.
    pub fn named_context(mut self, name: &str, context: NamedContext) -> Self {
        self.named_contexts.insert(contexts::context_key(name), context);
        self
    }

    /// The build args given.
    pub fn build_args(&self) -> &BTreeMap<String, String> {
        &self.build_args
    }
}

/// Lowers `ast` into the graph of the target stage, resolving the base images that stage needs.
pub fn lower(ast: &Ast, options: &LowerOptions, resolver: &dyn ImageResolver) -> Result<Definition, Error> {
    let stages = stages::Stages::split(ast)?;
    stages.check_cycles()?;
    let target = stages.target(options.target.as_deref())?;
    dispatch::Lowering::new(&stages, ast.escape, options, resolver, target)?.finish()
}

#[cfg(test)]
mod tests;
