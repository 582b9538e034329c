//! Assembling the image: layers, config and manifest in the content store.
//!
//! Each step's layer is the diff of its node's snapshot against the previous step's: the snapshot's own
//! changes when it was made on the previous one (the common case), else a comparison of the two trees. Diffs are
//! remembered per pair of snapshots and [`DiffOptions::cache_key`] (compression, level, time clamp), so a
//! re-export of a cached build compresses nothing and a zstd export never reuses a gzip blob. Base layers are
//! reused as they are unless the [`ImageFormat`] forces their recompression; every layer's media type is then
//! put in the format's family (OCI or Docker).

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{
    Arch, Descriptor, Digest as OciDigest, History, HistoryBuilder, ImageConfigurationBuilder, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder,
};
use strata_llb::Definition;
use strata_snapshotter::{DiffOptions, Digest, LayerDescriptor, SnapshotLayout, diff, recompress};
use strata_solver::{ReadTree, Solved, Solver, imported_layer};

use crate::format::layer_compression;
use crate::{Error, ImageFormat, Result, store_error};

/// How to assemble: the image's format and the build time.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    source_date_epoch: Option<i64>,
    format: ImageFormat,
    inline_cache: bool,
}

impl ExportOptions {
    /// gzip layers, OCI media types, created now.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `SOURCE_DATE_EPOCH`: the image's creation time, and the clamp for file times in new layers.
    pub fn source_date_epoch(mut self, epoch: Option<i64>) -> Self {
        self.source_date_epoch = epoch;
        self
    }

    /// Sets the compression and media types.
    pub fn format(mut self, format: ImageFormat) -> Self {
        self.format = format;
        self
    }

    /// Embeds the cache records of the image's steps in its config (`--cache-to type=inline`).
    pub fn inline_cache(mut self, inline: bool) -> Self {
        self.inline_cache = inline;
        self
    }
}

/// An image whose blobs are all in the content store.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor.
    pub manifest: Descriptor,
    /// The config's descriptor.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
}

impl Image {
    /// Every blob of the image: manifest, config, layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        [&self.manifest, &self.config].into_iter().chain(&self.layers)
    }
}

/// Builds the image of `definition` from its solve result into the solver's content store.
pub fn assemble(solver: &Solver, definition: &Definition, solved: &Solved, options: &ExportOptions) -> Result<Image> {
    let epoch = options.source_date_epoch;
    let created = rfc3339(epoch.unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
    }));
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history: Vec<History> = Vec::new();
    let mut previous: Option<String> = None;
    if let Some(base) = &definition.base {
        let image = solved
            .images
            .get(&base.node)
            .ok_or_else(|| Error::Unsupported(format!("the base image {} was not solved", base.reference)))?;
        for layer in image.manifest.layers() {
            let forced = options.format.recompresses(layer.media_type().as_ref());
            layers.push(if forced {
                recompressed(solver, layer, &options.format.diff_options(None))?
            } else {
                layer.clone()
            });
        }
        diff_ids.extend(image.config.rootfs().diff_ids().iter().cloned());
        history.extend(image.config.history().iter().flatten().cloned());
        previous = solved.snapshot(base.node).map(str::to_owned);
    }
    let diff_options = options.format.diff_options(epoch);
    for step in &definition.steps {
        let snapshot = step.node.and_then(|node| solved.snapshot(node)).map(str::to_owned);
        let changed = step.node.is_some() && snapshot != previous;
        if changed {
            let snapshot = snapshot.as_deref().expect("a changed step has a snapshot");
            let layer = layer_of(solver, snapshot, previous.as_deref(), &diff_options)?;
            layers.push(descriptor(&layer.media_type, layer.size, &layer.digest)?);
            diff_ids.push(layer.diff_id.to_string());
            previous = Some(snapshot.to_owned());
        }
        let entry = &step.history;
        let mut item = HistoryBuilder::default().created(entry.created.clone().unwrap_or_else(|| created.clone()));
        if let Some(by) = &entry.created_by {
            item = item.created_by(by.clone());
        }
        if let Some(comment) = &entry.comment {
            item = item.comment(comment.clone());
        }
        if !changed {
            item = item.empty_layer(true);
        }
        history.push(item.build().map_err(oci_error("history entry"))?);
    }
    let platform = &definition.platform;
    let mut config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(platform.architecture.as_str()))
        .os(Os::from(platform.os.as_str()))
        .rootfs(RootFsBuilder::default().typ("layers").diff_ids(diff_ids).build().map_err(oci_error("rootfs"))?)
        .history(history);
    if let Some(variant) = &platform.variant {
        config = config.variant(variant.clone());
    }
    let config = config.build().map_err(oci_error("image config"))?;
    // oci-spec's Config lacks Docker's Healthcheck, OnBuild and Shell; the frontend's config has them all.
    let mut config_json = serde_json::to_value(&config).map_err(oci_error("image config"))?;
    config_json["config"] = serde_json::to_value(&definition.config).map_err(oci_error("image config"))?;
    if options.inline_cache {
        let records = crate::cache::inline_records(solver, definition, solved, &layers, &diff_options)?;
        config_json[crate::cache::INLINE_FIELD] = records;
    }
    let format = &options.format;
    let config = write_json(solver, &config_json, format.config_media_type())?;
    for layer in &mut layers {
        let media_type = format.layer_media_type(layer.media_type().as_ref());
        layer.set_media_type(MediaType::from(media_type.as_str()));
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(format.manifest_media_type())
        .config(config.clone())
        .layers(layers.clone())
        .build()
        .map_err(oci_error("manifest"))?;
    let manifest = serde_json::to_value(&manifest).map_err(oci_error("manifest"))?;
    let manifest = write_json(solver, &manifest, format.manifest_media_type())?;
    Ok(Image { manifest, config, layers })
}

/// The layer of `snapshot` over `previous`: the blob an external cache unpacked it from, else from the diff
/// cache, else made now.
pub(crate) fn layer_of(
    solver: &Solver,
    snapshot: &str,
    previous: Option<&str>,
    options: &DiffOptions,
) -> Result<LayerDescriptor> {
    let metadata = solver.metadata();
    let record = metadata.snapshot(snapshot).map_err(store_error(|| format!("reading snapshot {snapshot}")))?;
    let parent = record.and_then(|r| r.parent);
    if parent.as_deref() == previous
        && let Some(layer) = imported_layer(solver.content(), metadata, snapshot)
        && layer_compression(&layer.media_type) == layer_compression(options.media_type())
    {
        return Ok(layer);
    }
    let cache_key = format!("layer/{snapshot}/{}/{}", previous.unwrap_or("scratch"), options.cache_key());
    if let Some(layer) = cached_layer(solver, &cache_key)? {
        return Ok(layer);
    }
    let layer = if parent.as_deref() == previous {
        let layout = solver.snapshotter().layout(snapshot).map_err(store_error(|| format!("opening {snapshot}")))?;
        diff(&layout, solver.content(), options)
    } else {
        // Not built on the previous step's snapshot (a cache hit recorded over an equal but rebuilt input):
        // compare the two whole trees instead.
        let tree = ReadTree::open(solver.snapshotter(), Some(snapshot)).map_err(opening(snapshot))?;
        let below = ReadTree::open(solver.snapshotter(), previous).map_err(opening(previous.unwrap_or("scratch")))?;
        let layout = SnapshotLayout::Full { dir: tree.path().to_owned(), parent: Some(below.path().to_owned()) };
        diff(&layout, solver.content(), options)
    }
    .map_err(store_error(|| format!("diffing {snapshot}")))?;
    record_layer(solver, &cache_key, &layer)?;
    Ok(layer)
}

/// The base layer `layer` recompressed as `options` say, from the cache or made now; annotations and URLs kept.
fn recompressed(solver: &Solver, layer: &Descriptor, options: &DiffOptions) -> Result<Descriptor> {
    let digest = crate::oci_layout::store_digest(layer)?;
    let cache_key = format!("recompressed/{digest}/{}", options.cache_key());
    let made = match cached_layer(solver, &cache_key)? {
        Some(made) => made,
        None => {
            let made = recompress(solver.content(), &digest, options)
                .map_err(store_error(|| format!("recompressing base layer {digest}")))?;
            record_layer(solver, &cache_key, &made)?;
            made
        }
    };
    let mut converted = layer.clone();
    converted.set_media_type(MediaType::from(made.media_type.as_str()));
    converted.set_digest(OciDigest::from_str(&made.digest.to_string()).map_err(oci_error("digest"))?);
    converted.set_size(made.size);
    Ok(converted)
}

/// The layer recorded under `cache_key`, if its blob is still in the content store.
fn cached_layer(solver: &Solver, cache_key: &str) -> Result<Option<LayerDescriptor>> {
    let record = solver.metadata().cache(cache_key).map_err(store_error(|| format!("reading {cache_key}")))?;
    Ok(record.and_then(|r| layer_from_json(&r.result)).filter(|layer| solver.content().exists(&layer.digest)))
}

/// Records `layer` under `cache_key`, for [`cached_layer`].
fn record_layer(solver: &Solver, cache_key: &str, layer: &LayerDescriptor) -> Result<()> {
    let json = serde_json::json!({
        "media_type": layer.media_type,
        "digest": layer.digest.to_string(),
        "size": layer.size,
        "diff_id": layer.diff_id.to_string(),
    });
    solver.metadata().put_cache(cache_key, &json).map_err(store_error(|| format!("recording {cache_key}")))
}

fn opening(snapshot: &str) -> impl FnOnce(strata_solver::Error) -> Error {
    move |source| Error::Snapshot {
        context: format!("opening snapshot {snapshot} to diff it"),
        source: Box::new(source),
    }
}

fn layer_from_json(json: &serde_json::Value) -> Option<LayerDescriptor> {
    Some(LayerDescriptor {
        media_type: json["media_type"].as_str()?.to_owned(),
        digest: json["digest"].as_str()?.parse().ok()?,
        size: json["size"].as_u64()?,
        diff_id: json["diff_id"].as_str()?.parse().ok()?,
    })
}

/// Writes `json` to the content store and describes it.
pub(crate) fn write_json(solver: &Solver, json: &serde_json::Value, media_type: MediaType) -> Result<Descriptor> {
    let bytes = serde_json::to_vec(json).map_err(oci_error("serialising a document"))?;
    let digest = solver.content().write_bytes(&bytes).map_err(store_error(|| format!("storing the {media_type}")))?;
    descriptor(media_type.as_ref(), bytes.len() as u64, &digest)
}

/// An OCI descriptor for a blob of the content store.
fn descriptor(media_type: &str, size: u64, digest: &Digest) -> Result<Descriptor> {
    let digest = OciDigest::from_str(&digest.to_string()).map_err(oci_error("digest"))?;
    Ok(Descriptor::new(MediaType::from(media_type), size, digest))
}

pub(crate) fn oci_error<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Oci { context: format!("building the {what}"), reason: e.to_string() }
}

/// Seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    let (days, rem) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
