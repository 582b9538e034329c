//! `--cache-from` and `--cache-to` as buildx takes them: `type=local,src=DIR[,tag=TAG]` /
//! `type=local,dest=DIR[,tag=TAG][,mode=min|max]`, `type=registry,ref=REF[,mode=min|max]` (or just `REF`), and
//! `--cache-to type=inline` (the records in the built image's config, read back with
//! `--cache-from type=registry,ref=IMAGE`).
//! buildx's `image-manifest` and `oci-mediatypes` are accepted and have no effect: a strata cache is always an OCI
//! image manifest.

use std::path::PathBuf;
use std::sync::Arc;

use strata_exporter::cache::{CacheMode, ImportedCache, cache_image};
use strata_exporter::{ImageFormat, write_oci_layout};
use strata_llb::Definition;
use strata_registry::Reference;
use strata_solver::{Solved, Solver};

use super::spec::Fields;
use crate::cmd::store::{Stores, reference, registry_client};
use crate::cmd::{CliError, Globals};

/// The tag a layout cache is written and read under unless `tag=` says otherwise.
const DEFAULT_TAG: &str = "latest";
/// buildx fields that change nothing here.
const IGNORED: [&str; 2] = ["image-manifest", "oci-mediatypes"];

/// Where a `--cache-from` cache is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheFrom {
    /// An OCI layout directory, the cache tagged `tag`.
    Local { src: PathBuf, tag: String },
    /// A registry: a cache manifest, or an image with an inline cache.
    Registry { reference: Reference },
}

/// Where a `--cache-to` cache is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheTo {
    /// An OCI layout directory, tagged `tag`.
    Local { dest: PathBuf, tag: String, mode: CacheMode },
    /// A registry reference.
    Registry { reference: Reference, mode: CacheMode },
    /// The built image's config.
    Inline,
}

impl CacheFrom {
    /// Parses one `--cache-from` value.
    pub fn parse(spec: &str) -> Result<Self, CliError> {
        let fields = Fields::parse("--cache-from", spec);
        if let Some(reference) = shorthand(&fields, spec)? {
            return Ok(Self::Registry { reference });
        }
        match fields.get("type") {
            Some("local") => {
                only(&fields, &["type", "src", "tag"])?;
                Ok(Self::Local { src: fields.required("src", "DIR")?.into(), tag: tag(&fields) })
            }
            Some("registry") => {
                only(&fields, &["type", "ref"])?;
                Ok(Self::Registry { reference: registry_ref(&fields)? })
            }
            other => Err(bad_type(&fields, other, "local and registry are")),
        }
    }
}

impl std::fmt::Display for CacheFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { src, tag } => write!(f, "type=local,src={},tag={tag}", src.display()),
            Self::Registry { reference } => write!(f, "type=registry,ref={reference}"),
        }
    }
}

impl CacheTo {
    /// Parses one `--cache-to` value.
    pub fn parse(spec: &str) -> Result<Self, CliError> {
        let fields = Fields::parse("--cache-to", spec);
        if let Some(reference) = shorthand(&fields, spec)? {
            return Ok(Self::Registry { reference, mode: CacheMode::Min });
        }
        match fields.get("type") {
            Some("local") => {
                only(&fields, &["type", "dest", "tag", "mode"])?;
                let dest = fields.required("dest", "DIR")?.into();
                Ok(Self::Local { dest, tag: tag(&fields), mode: mode(&fields)? })
            }
            Some("registry") => {
                only(&fields, &["type", "ref", "mode"])?;
                Ok(Self::Registry { reference: registry_ref(&fields)?, mode: mode(&fields)? })
            }
            Some("inline") => {
                only(&fields, &["type", "mode"])?;
                match mode(&fields)? {
                    CacheMode::Min => Ok(Self::Inline),
                    CacheMode::Max => Err(fields.error("mode=max is not supported with type=inline".into())),
                }
            }
            other => Err(bad_type(&fields, other, "local, registry and inline are")),
        }
    }
}

/// buildx's shorthand: a spec without `=` is a registry reference.
fn shorthand(fields: &Fields<'_>, spec: &str) -> Result<Option<Reference>, CliError> {
    if spec.contains('=') {
        return Ok(None);
    }
    reference(spec).map(Some).map_err(|e| fields.error(e.0))
}

/// Refuses fields other than `allowed` (and the buildx fields that change nothing).
fn only(fields: &Fields<'_>, allowed: &[&str]) -> Result<(), CliError> {
    match fields.keys().find(|k| !allowed.contains(k) && !IGNORED.contains(k)) {
        Some(key) => Err(fields.error(format!("unknown field {key:?} (known: {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn bad_type(fields: &Fields<'_>, given: Option<&str>, supported: &str) -> CliError {
    match given {
        None => fields.error(format!("type=TYPE is required ({supported})")),
        Some(other) => fields.error(format!("type={other} is not supported ({supported})")),
    }
}

fn tag(fields: &Fields<'_>) -> String {
    fields.get("tag").filter(|t| !t.is_empty()).unwrap_or(DEFAULT_TAG).to_owned()
}

fn mode(fields: &Fields<'_>) -> Result<CacheMode, CliError> {
    match fields.get("mode") {
        None | Some("min") => Ok(CacheMode::Min),
        Some("max") => Ok(CacheMode::Max),
        Some(other) => Err(fields.error(format!("mode={other} is not min or max"))),
    }
}

fn registry_ref(fields: &Fields<'_>) -> Result<Reference, CliError> {
    let value = fields.required("ref", "REF")?;
    reference(value).map_err(|e| fields.error(format!("ref={value}: {}", e.0)))
}

/// Reads every `--cache-from` cache (manifests and configs only) for the solver; an unreadable cache is a
/// warning, as in buildx, and the build goes on without it.
pub fn import(
    globals: &Globals,
    stores: &Stores,
    runtime: &tokio::runtime::Runtime,
    from: &[CacheFrom],
) -> Result<Vec<Arc<ImportedCache>>, CliError> {
    let mut caches = Vec::new();
    for source in from {
        let cache = match source {
            CacheFrom::Local { src, tag } => ImportedCache::from_layout(src, tag, &stores.content),
            CacheFrom::Registry { reference } => {
                let client = registry_client(globals)?;
                runtime.block_on(ImportedCache::from_registry(client, reference.clone(), &stores.content))
            }
        };
        match cache {
            Ok(cache) if cache.is_empty() => eprintln!("WARNING: --cache-from {source} holds no cache records"),
            Ok(cache) => caches.push(Arc::new(cache)),
            Err(e) => eprintln!("WARNING: --cache-from {source}: {e}; building without it"),
        }
    }
    Ok(caches)
}

/// Writes every `--cache-to` cache but the inline one (which the image carries).
pub fn export(
    globals: &Globals,
    runtime: &tokio::runtime::Runtime,
    to: &[CacheTo],
    build: (&Solver, &Definition, &Solved),
    epoch: Option<i64>,
) -> Result<(), CliError> {
    let (solver, definition, solved) = build;
    // The images' default layer encoding, so the cache shares their blobs.
    let options = ImageFormat::new().diff_options(epoch);
    for destination in to {
        let failed = |e: &dyn std::fmt::Display| CliError(format!("--cache-to: {e}"));
        match destination {
            CacheTo::Local { dest, tag, mode } => {
                let image = cache_image(solver, definition, solved, *mode, &options).map_err(|e| failed(&e))?;
                write_oci_layout(solver.content(), &image, Some(&format!("cache:{tag}")), dest)
                    .map_err(|e| failed(&e))?;
            }
            CacheTo::Registry { reference, mode } => {
                let image = cache_image(solver, definition, solved, *mode, &options).map_err(|e| failed(&e))?;
                let manifest = image.manifest.digest().to_string().parse().map_err(CliError::from_display)?;
                let client = registry_client(globals)?;
                runtime.block_on(client.push(solver.content(), &manifest, reference, None)).map_err(|e| failed(&e))?;
            }
            CacheTo::Inline => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_like_buildx() {
        assert_eq!(
            CacheTo::parse("type=local,dest=d,mode=max").unwrap(),
            CacheTo::Local { dest: "d".into(), tag: "latest".into(), mode: CacheMode::Max }
        );
        assert_eq!(
            CacheTo::parse("type=registry,ref=r.io/c:x,image-manifest=true,oci-mediatypes=true").unwrap(),
            CacheTo::Registry { reference: reference("r.io/c:x").unwrap(), mode: CacheMode::Min }
        );
        assert_eq!(CacheTo::parse("type=inline").unwrap(), CacheTo::Inline);
        assert_eq!(
            CacheFrom::parse("type=local,src=d,tag=v1").unwrap(),
            CacheFrom::Local { src: "d".into(), tag: "v1".into() }
        );
        assert_eq!(
            CacheFrom::parse("type=registry,ref=r.io/c").unwrap(),
            CacheFrom::Registry { reference: reference("r.io/c").unwrap() }
        );
        assert_eq!(CacheFrom::parse("r.io/c").unwrap(), CacheFrom::parse("type=registry,ref=r.io/c").unwrap());
        assert_eq!(CacheTo::parse("r.io/c:x").unwrap(), CacheTo::parse("type=registry,ref=r.io/c:x").unwrap());
    }

    #[test]
    fn bad_specs_name_the_flag_and_the_field() {
        let to = |spec: &str| CacheTo::parse(spec).unwrap_err().0;
        let from = |spec: &str| CacheFrom::parse(spec).unwrap_err().0;
        assert_eq!(to("type=local"), "--cache-to type=local: dest=DIR is required");
        assert_eq!(
            to("type=local,dest=d,mode=all"),
            "--cache-to type=local,dest=d,mode=all: mode=all is not min or max"
        );
        assert_eq!(to("type=gha"), "--cache-to type=gha: type=gha is not supported (local, registry and inline are)");
        assert_eq!(to("dest=d"), "--cache-to dest=d: type=TYPE is required (local, registry and inline are)");
        assert!(to("type=inline,mode=max").contains("mode=max is not supported with type=inline"));
        assert!(to("type=registry,ref=r.io/c,compression=zstd").contains("unknown field \"compression\""));
        assert_eq!(
            from("type=local,dest=d"),
            "--cache-from type=local,dest=d: unknown field \"dest\" (known: type, src, tag)"
        );
        assert_eq!(from("type=registry"), "--cache-from type=registry: ref=REF is required");
        assert!(from("type=registry,ref=a/B").starts_with("--cache-from type=registry,ref=a/B: ref=a/B: "));
        assert!(from("type=inline").contains("type=inline is not supported (local and registry are)"));
    }
}
