//! Building: lower with base images from the store or registry, solve, assemble the image, write the outputs
//! name it with `-t` and `type=image` outputs, and push it with `--push`.

use std::collections::HashMap;
use std::sync::Arc;

use strata_frontend::lower::{LowerOptions, lower};
use strata_frontend::parser::Ast;
use strata_solver::{Solver, StoreImageSource};

use super::cache::{self, CacheFrom, CacheTo};
use super::contexts::BuildContexts;
use super::export::{Exporter, export, image_names};
use super::images::StoreResolver;
use super::output::Output;
use super::progress::{self, End};
use super::signals::{self, Interrupts};
use super::spec::Fields;
use super::{BuildArgs, run_options};
use crate::cmd::store::Stores;
use crate::cmd::{CliError, Globals};

/// Builds the target of `ast` and writes it where the flags say.
pub fn build(globals: &Globals, args: &BuildArgs, ast: &Ast, options: &LowerOptions) -> Result<(), CliError> {
    let cache_from = args.cache_from.iter().map(|spec| CacheFrom::parse(spec)).collect::<Result<Vec<_>, _>>()?;
    let cache_to = args.cache_to.iter().map(|spec| CacheTo::parse(spec)).collect::<Result<Vec<_>, _>>()?;
    let outputs = args.outputs.iter().map(|spec| Output::parse(spec)).collect::<Result<Vec<_>, _>>()?;
    let names = image_names(args, &outputs)?;
    let secrets = secrets(&args.secrets)?;
    let epoch = source_date_epoch(options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("starting the async runtime: {e}")))?;
    let stores = Stores::open(globals)?;
    let contexts = BuildContexts::load(&args.build_contexts, &stores, args.platform.as_deref())?;
    let definition = lower(ast, &contexts.apply(options), &StoreResolver { globals, stores: &stores })
        .map_err(CliError::from_display)?;
    // Read before progress starts drawing, which its warnings would disturb. `--no-cache` lowers every node to
    // ignore the cache, imported ones included.
    let caches = cache::import(globals, &stores, &runtime, &cache_from)?;

    let progress = progress::for_mode(args.progress, &definition.graph, secrets.values().map(Vec::as_slice))?;
    let interrupts = Interrupts::watch(&runtime)?;
    let (content, metadata, snapshotter) =
        (stores.content.clone(), stores.metadata.clone(), stores.snapshotter.clone());
    let images = Arc::new(StoreImageSource::new(content.clone(), metadata.clone(), snapshotter.clone()));
    let mut solver = Solver::builder(&globals.root, content, metadata, snapshotter, images)
        .context("context", &args.context)
        .progress(progress.clone());
    for (name, dir) in &contexts.locals {
        solver = solver.context(name, dir);
    }
    for (id, value) in secrets {
        solver = solver.secret(id, value);
    }
    for cache in caches {
        solver = solver.cache_source(cache);
    }
    let (solver, agents) = run_options::apply(solver, args)?;
    let solver = solver.build();
    let solved = match runtime.block_on(interrupts.during(solver.solve(&definition))) {
        Ok(solved) => solved.inspect_err(|_| progress.end(End::Failed)).map_err(CliError::from_display)?,
        Err(interrupted) => {
            progress.end(End::Canceled);
            drop(agents);
            signals::exit_canceled(runtime, interrupted)
        }
    };
    let exporter =
        Exporter::new(&solver, &definition, &solved, epoch).inline_cache(cache_to.contains(&CacheTo::Inline));
    let image = export(globals, &stores, args, &outputs, &names, exporter)?;
    cache::export(globals, &runtime, &cache_to, (&solver, &definition, &solved), epoch)?;
    progress.end(End::Built(image.as_deref()));
    Ok(())
}

/// `SOURCE_DATE_EPOCH` from `--build-arg`, else from the environment (buildx passes the variable on as that build
/// arg): the image's creation time and the clamp on file times in new layers.
fn source_date_epoch(options: &LowerOptions) -> Result<Option<i64>, CliError> {
    let value = match options.build_args().get("SOURCE_DATE_EPOCH") {
        Some(value) => value.clone(),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(value) => value,
            Err(_) => return Ok(None),
        },
    };
    let seconds = value.parse::<i64>().map_err(|e| CliError(format!("SOURCE_DATE_EPOCH={value}: {e}")))?;
    Ok(Some(seconds))
}

/// `--secret id=ID,src=FILE` and `--secret id=ID,env=VAR` read into memory; never written to the store.
fn secrets(specs: &[String]) -> Result<HashMap<String, Vec<u8>>, CliError> {
    let mut secrets = HashMap::new();
    for spec in specs {
        let fields = Fields::parse("--secret", spec);
        let id = fields.required("id", "ID")?;
        let value = match (fields.get("src").or(fields.get("source")), fields.get("env")) {
            (Some(file), _) => std::fs::read(file).map_err(|e| fields.error(format!("reading {file}: {e}")))?,
            (None, Some(var)) => std::env::var(var).map_err(|e| fields.error(format!("${var}: {e}")))?.into_bytes(),
            (None, None) => std::env::var(id).map(String::into_bytes).unwrap_or_default(),
        };
        secrets.insert(id.to_owned(), value);
    }
    Ok(secrets)
}
