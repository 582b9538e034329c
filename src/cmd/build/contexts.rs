//! `--build-context NAME=VALUE`: a local directory, `docker-image://REF[@DIGEST]` or
//! `oci-layout://PATH[:TAG|@DIGEST]`, given to the lowering as named contexts. An OCI layout's image is
//! imported into the content store first (every blob verified) and named `NAME@<manifest digest>`, so the
//! build resolves it like any stored image; a directory becomes the local source `NAME`.

use std::path::PathBuf;

use strata_frontend::lower::{LowerOptions, NamedContext};
use strata_registry::{Platform, import_layout};

use super::ignore_patterns;
use crate::cmd::CliError;
use crate::cmd::pull::name_pulled;
use crate::cmd::store::{Stores, reference};

/// One `--build-context` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// `docker-image://REF`: resolved as FROM resolves it (store, then registry).
    Image(String),
    /// `oci-layout://PATH[:TAG|@DIGEST]`.
    OciLayout { path: PathBuf, selector: Option<String> },
    /// A directory.
    Local(PathBuf),
}

/// The named contexts of a build: what the lowering looks names up in, and the directories the solver reads.
#[derive(Debug, Default)]
pub struct BuildContexts {
    named: Vec<(String, NamedContext)>,
    /// `(local source name, directory)` for the solver.
    pub locals: Vec<(String, PathBuf)>,
}

impl BuildContexts {
    /// Parses every `--build-context` and imports OCI layouts into the store, for `platform` (`--platform`).
    pub fn load(specs: &[String], stores: &Stores, platform: Option<&str>) -> Result<Self, CliError> {
        let mut contexts = Self::default();
        for spec in specs {
            let (name, source) = parse(spec)?;
            let context = match source {
                Source::Image(reference) => NamedContext::Image(reference),
                Source::Local(dir) => {
                    let exclude = ignore_patterns(&[dir.join(".dockerignore")]).map_err(|e| flag_error(spec, &e))?;
                    contexts.locals.push((name.clone(), dir));
                    NamedContext::Local { name: name.clone(), exclude }
                }
                Source::OciLayout { path, selector } => {
                    let platform = match platform {
                        Some(p) => p.parse::<Platform>().map_err(CliError::from_display)?,
                        None => Platform::host(),
                    };
                    let image = import_layout(&path, selector.as_deref(), &stores.content, &platform)
                        .map_err(|e| flag_error(spec, &e.to_string()))?;
                    let named = reference(&name).map_err(|e| flag_error(spec, &e.0))?;
                    let named = named.with_digest(image.manifest_digest.clone());
                    name_pulled(stores, &named, &image)?;
                    NamedContext::Image(named.to_string())
                }
            };
            contexts.named.push((name, context));
        }
        Ok(contexts)
    }

    /// `options` with the named contexts added.
    pub fn apply(&self, options: &LowerOptions) -> LowerOptions {
        self.named.iter().fold(options.clone(), |options, (name, context)| options.named_context(name, context.clone()))
    }
}

/// `NAME=VALUE` into the name and its source.
fn parse(spec: &str) -> Result<(String, Source), CliError> {
    let (name, value) = spec.split_once('=').ok_or_else(|| flag_error(spec, "expected NAME=VALUE"))?;
    // Names are image-reference-like (BuildKit parses them as references): the repository part is lowercase.
    let repository = name.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')).map_or(name, |(repo, _)| repo);
    if name.is_empty() || name.contains(char::is_whitespace) || repository.contains(|c: char| c.is_ascii_uppercase()) {
        return Err(flag_error(spec, "the name must be non-empty, lowercase and without spaces"));
    }
    if name == "context" {
        return Err(flag_error(spec, "\"context\" is the main build context; pick another name"));
    }
    let source = if let Some(image) = value.strip_prefix("docker-image://") {
        if image.is_empty() {
            return Err(flag_error(spec, "docker-image:// needs an image reference"));
        }
        Source::Image(image.to_owned())
    } else if let Some(layout) = value.strip_prefix("oci-layout://") {
        let (path, selector) = split_layout(layout);
        if !path.join("index.json").is_file() {
            return Err(flag_error(spec, &format!("{} is not an OCI layout (no index.json)", path.display())));
        }
        Source::OciLayout { path, selector }
    } else if let Some((scheme, _)) = value.split_once("://") {
        return Err(flag_error(
            spec,
            &format!("{scheme}:// contexts are not supported (use a directory, docker-image:// or oci-layout://)"),
        ));
    } else {
        let dir = PathBuf::from(value);
        if !dir.is_dir() {
            return Err(flag_error(spec, &format!("{value} is not a directory")));
        }
        Source::Local(dir)
    };
    Ok((name.to_owned(), source))
}

/// `PATH@sha256:...`, `PATH:TAG` or `PATH`; a colon followed by a `/` belongs to the path.
fn split_layout(layout: &str) -> (PathBuf, Option<String>) {
    if let Some((path, digest)) = layout.rsplit_once('@').filter(|(_, d)| d.starts_with("sha256:")) {
        return (PathBuf::from(path), Some(digest.to_owned()));
    }
    match layout.rsplit_once(':') {
        Some((path, tag)) if !tag.is_empty() && !tag.contains('/') => (PathBuf::from(path), Some(tag.to_owned())),
        _ => (PathBuf::from(layout), None),
    }
}

fn flag_error(spec: &str, reason: &str) -> CliError {
    CliError(format!("--build-context {spec}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_images_layouts_or_directories() {
        let dir = tempfile::tempdir().unwrap();
        let image = parse("base=docker-image://alpine:3.20").unwrap();
        assert_eq!(image, ("base".into(), Source::Image("alpine:3.20".into())));
        let local = parse(&format!("assets={}", dir.path().display())).unwrap();
        assert_eq!(local.1, Source::Local(dir.path().to_owned()));
        let err = parse("assets=/does/not/exist").unwrap_err().0;
        assert_eq!(err, "--build-context assets=/does/not/exist: /does/not/exist is not a directory");
        assert!(parse("x=git://example.com/r.git").unwrap_err().0.contains("git:// contexts are not supported"));
        assert!(parse("noequals").unwrap_err().0.contains("expected NAME=VALUE"));
        assert!(parse("Base=docker-image://x").unwrap_err().0.contains("lowercase"));
        let err = parse(&format!("l=oci-layout://{}", dir.path().display())).unwrap_err().0;
        assert!(err.contains("is not an OCI layout"), "{err}");
    }

    #[test]
    fn layout_paths_split_from_tags_and_digests() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(split_layout(&format!("/l@{digest}")), (PathBuf::from("/l"), Some(digest)));
        assert_eq!(split_layout("/l:v1"), (PathBuf::from("/l"), Some("v1".into())));
        assert_eq!(split_layout("/l"), (PathBuf::from("/l"), None));
        assert_eq!(split_layout("./a:b/l"), (PathBuf::from("./a:b/l"), None));
    }
}
