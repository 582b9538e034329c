//! Building: lower with base images from the store or registry, solve, assemble the image, write the outputs
//! name it with `-t` and `type=image` outputs, and push it with `--push`.

use std::collections::HashMap;
use std::sync::Arc;

use strata_exporter::{ExportOptions, assemble, write_docker_tar, write_local, write_oci_layout, write_oci_tar};
use strata_frontend::lower::{LowerOptions, lower};
use strata_frontend::parser::Ast;
use strata_registry::Reference;
use strata_snapshotter::metadata::RefTarget;
use strata_snapshotter::snapshot;
use strata_snapshotter::{ContentStore, Digest, MetadataStore};
use strata_solver::{Solver, StoreImageSource};

use super::contexts::BuildContexts;
use super::images::StoreResolver;
use super::output::Output;
use super::progress::PlainProgress;
use super::{BuildArgs, Progress};
use crate::cmd::push::push_image;
use crate::cmd::store::{Stores, reference};
use crate::cmd::{CliError, Globals};

/// Builds the target of `ast` and writes it where the flags say.
pub fn build(globals: &Globals, args: &BuildArgs, ast: &Ast, options: &LowerOptions) -> Result<(), CliError> {
    refuse_unsupported(args)?;
    let outputs = args.outputs.iter().map(|spec| Output::parse(spec)).collect::<Result<Vec<_>, _>>()?;
    let names = image_names(args, &outputs)?;
    let secrets = secrets(&args.secrets)?;
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => Some(value.parse::<i64>().map_err(|e| CliError(format!("SOURCE_DATE_EPOCH={value}: {e}")))?),
        Err(_) => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("starting the async runtime: {e}")))?;
    let stores = Stores::open(globals)?;
    let contexts = BuildContexts::load(&args.build_contexts, &stores, args.platform.as_deref())?;
    let definition = lower(ast, &contexts.apply(options), &StoreResolver { globals, stores: &stores })
        .map_err(CliError::from_display)?;

    let content = Arc::new(ContentStore::open(globals.root.join("content")).map_err(CliError::from_display)?);
    let metadata = Arc::new(MetadataStore::open(&globals.root).map_err(CliError::from_display)?);
    let kind = globals.snapshotter.unwrap_or_else(|| snapshot::probe(&globals.root));
    let snapshotter: Arc<dyn snapshot::Snapshotter> =
        snapshot::open(&globals.root, metadata.clone(), kind).map_err(CliError::from_display)?.into();
    let images = Arc::new(StoreImageSource::new(content.clone(), metadata.clone(), snapshotter.clone()));
    let mut solver = Solver::builder(&globals.root, content.clone(), metadata, snapshotter, images)
        .context("context", &args.context)
        .progress(Arc::new(PlainProgress::new(args.progress == Progress::Quiet)));
    for (name, dir) in &contexts.locals {
        solver = solver.context(name, dir);
    }
    for (id, value) in secrets {
        solver = solver.secret(id, value);
    }
    let solver = solver.build();
    let solved = runtime.block_on(solver.solve(&definition)).map_err(CliError::from_display)?;
    let image = assemble(&solver, &definition, &solved, &ExportOptions::new().source_date_epoch(epoch))
        .map_err(CliError::from_display)?;

    let name = args.tags.first().map(String::as_str);
    for output in outputs {
        match output {
            Output::Oci { dest, tar: false } => write_oci_layout(&content, &image, name, &dest),
            Output::Oci { dest, tar: true } => write_oci_tar(&content, &image, name, &dest),
            Output::Docker { dest } => write_docker_tar(&content, &image, name, &dest),
            Output::Local { dest } => write_local(&content, &image, &dest),
            // Named and pushed below, once the image's blobs are kept alive under its names.
            Output::Image { .. } => continue,
        }
        .map_err(CliError::from_display)?;
    }
    let manifest: Digest = image.manifest.digest().to_string().parse().map_err(CliError::from_display)?;
    let mut targets = image
        .blobs()
        .map(|b| b.digest().to_string().parse().map(RefTarget::Blob))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::from_display)?;
    // The root snapshot keeps its parents, the whole chain, alive for GC.
    targets.extend(definition.root.and_then(|root| solved.snapshot(root)).map(|s| RefTarget::Snapshot(s.to_owned())));
    for (name, _) in &names {
        stores.name_image(name, &manifest, &targets)?;
    }
    if let Some(file) = &args.metadata_file {
        let metadata = serde_json::json!({
            "containerimage.digest": manifest.to_string(),
            "containerimage.config.digest": image.config.digest().to_string(),
            "image.name": names.iter().map(|(name, _)| name.to_string()).collect::<Vec<_>>().join(","),
        });
        std::fs::write(file, metadata.to_string())
            .map_err(|e| CliError(format!("writing --metadata-file {}: {e}", file.display())))?;
    }
    eprintln!("writing image {manifest} done");
    for (name, _) in names.iter().filter(|(_, push)| *push) {
        push_image(globals, &stores, &manifest, name, None)?;
    }
    Ok(())
}

/// The names the image gets in the store, each with whether it is pushed: the `-t` tags (pushed with `--push`),
/// and `type=image` outputs' `name`s; an image output without a name applies to the tags.
fn image_names(args: &BuildArgs, outputs: &[Output]) -> Result<Vec<(Reference, bool)>, CliError> {
    let mut names = args.tags.iter().map(|tag| Ok((reference(tag)?, args.push))).collect::<Result<Vec<_>, _>>()?;
    let pushes_tags = args.push || outputs.iter().any(|o| matches!(o, Output::Image { name: None, push: true }));
    if pushes_tags && args.tags.is_empty() {
        return Err(CliError("pushing needs a name: -t NAME[:TAG] or --output type=image,name=NAME".into()));
    }
    for output in outputs {
        match output {
            Output::Image { name: Some(name), push } => names.push((reference(name)?, *push)),
            Output::Image { name: None, push: true } => names.iter_mut().for_each(|(_, push)| *push = true),
            _ => {}
        }
    }
    Ok(names)
}

/// Flags whose effect strata does not have yet fail the build rather than being silently ignored.
fn refuse_unsupported(args: &BuildArgs) -> Result<(), CliError> {
    let unsupported = [(!args.cache_from.is_empty(), "--cache-from"), (!args.cache_to.is_empty(), "--cache-to")];
    match unsupported.iter().find(|(given, _)| *given) {
        Some((_, flag)) => Err(CliError(format!("{flag} is not supported yet"))),
        None => Ok(()),
    }
}

/// `--secret id=ID,src=FILE` and `--secret id=ID,env=VAR` read into memory; never written to the store.
fn secrets(specs: &[String]) -> Result<HashMap<String, Vec<u8>>, CliError> {
    let mut secrets = HashMap::new();
    for spec in specs {
        let fields: HashMap<&str, &str> = spec.split(',').filter_map(|f| f.split_once('=')).collect();
        let id = fields.get("id").ok_or_else(|| CliError(format!("--secret {spec}: id=ID is required")))?;
        let value = match (fields.get("src").or(fields.get("source")), fields.get("env")) {
            (Some(file), _) => {
                std::fs::read(file).map_err(|e| CliError(format!("--secret {spec}: reading {file}: {e}")))?
            }
            (None, Some(var)) => {
                std::env::var(var).map_err(|e| CliError(format!("--secret {spec}: ${var}: {e}")))?.into_bytes()
            }
            (None, None) => std::env::var(id).map(String::into_bytes).unwrap_or_default(),
        };
        secrets.insert((*id).to_owned(), value);
    }
    Ok(secrets)
}
