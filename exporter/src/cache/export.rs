//! Making a cache from a solved build: each exported node's key with the layers that rebuild its snapshot from
//! the empty tree, i.e. one layer per snapshot of its parent chain. Base-image snapshots keep the image's own
//! blobs; every other layer comes from the exporter's diff cache, so nothing is compressed twice.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use oci_spec::image::{Descriptor, Digest as OciDigest, ImageManifestBuilder, MediaType};
use strata_llb::{Definition, NodeId, Op, SourceOp};
use strata_snapshotter::{DiffOptions, LayerDescriptor, chain_ids};
use strata_solver::{Solved, Solver};

use super::{CACHE_CONFIG_MEDIA_TYPE, CacheConfig, CacheLayer, InlineCache, Record};
use crate::image::{layer_of, oci_error, write_json};
use crate::{Error, Image, Result, store_error};

/// Which nodes a cache keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// The steps of the exported image only.
    #[default]
    Min,
    /// Every solved node with a result, other stages included.
    Max,
}

/// Writes the cache of `solved` as an OCI image manifest (config: the cache config, layers: every blob it names)
/// into the solver's content store, making new layers with `options`.
pub fn cache_image(
    solver: &Solver,
    definition: &Definition,
    solved: &Solved,
    mode: CacheMode,
    options: &DiffOptions,
) -> Result<Image> {
    let chains = Chains::new(solver, solved, options)?;
    let mut config = CacheConfig::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (key, layers) in chains.records(&exported_nodes(definition, solved, mode))? {
        let mut indices = Vec::new();
        for layer in &layers {
            let next = config.layers.len();
            let at = *index.entry(layer.digest.to_string()).or_insert(next);
            if at == next {
                config.layers.push(CacheLayer::from(layer));
            }
            indices.push(at);
        }
        config.records.push(Record { key, layers: indices });
    }
    let json = serde_json::to_value(&config).map_err(oci_error("cache config"))?;
    let config_descriptor = write_json(solver, &json, MediaType::from(CACHE_CONFIG_MEDIA_TYPE))?;
    let layers = config
        .layers
        .iter()
        .map(|l| {
            let digest = OciDigest::from_str(&l.digest.to_string()).map_err(oci_error("digest"))?;
            Ok(Descriptor::new(MediaType::from(l.media_type.as_str()), l.size, digest))
        })
        .collect::<Result<Vec<_>>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_descriptor.clone())
        .layers(layers.clone())
        .build()
        .map_err(oci_error("cache manifest"))?;
    let manifest = serde_json::to_value(&manifest).map_err(oci_error("cache manifest"))?;
    let manifest = write_json(solver, &manifest, MediaType::ImageManifest)?;
    Ok(Image { manifest, config: config_descriptor, layers })
}

/// The inline cache of an image whose layers are `layers` (base first): the records of its steps whose every
/// layer is one of the image's, with indices into them.
pub(crate) fn inline_records(
    solver: &Solver,
    definition: &Definition,
    solved: &Solved,
    layers: &[Descriptor],
    options: &DiffOptions,
) -> Result<serde_json::Value> {
    let chains = Chains::new(solver, solved, options)?;
    let position: HashMap<String, usize> =
        layers.iter().enumerate().map(|(i, l)| (l.digest().to_string(), i)).collect();
    let mut inline = InlineCache::default();
    for (key, chain) in chains.records(&exported_nodes(definition, solved, CacheMode::Min))? {
        let indices: Option<Vec<usize>> = chain.iter().map(|l| position.get(&l.digest.to_string()).copied()).collect();
        if let Some(layers) = indices {
            inline.records.push(Record { key, layers });
        }
    }
    serde_json::to_value(&inline).map_err(oci_error("inline cache"))
}

/// The nodes `mode` exports: the image's steps, or every solved node except image sources (whose layers every
/// record that uses them carries anyway) and local contexts (reading one is cheaper than downloading it).
fn exported_nodes(definition: &Definition, solved: &Solved, mode: CacheMode) -> Vec<NodeId> {
    let mut nodes: Vec<NodeId> = match mode {
        CacheMode::Min => definition.steps.iter().filter_map(|s| s.node).collect(),
        CacheMode::Max => solved
            .results
            .keys()
            .copied()
            .filter(|&node| !matches!(definition.graph.node(node).op, Op::Source(SourceOp::Local { .. })))
            .collect(),
    };
    nodes.retain(|node| !solved.images.contains_key(node) && solved.results.contains_key(node));
    nodes.sort();
    nodes.dedup();
    nodes
}

/// Finds the layers that rebuild snapshots.
struct Chains<'a> {
    solver: &'a Solver,
    solved: &'a Solved,
    options: &'a DiffOptions,
    /// Base images' layers by the chain ID their snapshots are named by.
    base: HashMap<String, LayerDescriptor>,
}

impl<'a> Chains<'a> {
    fn new(solver: &'a Solver, solved: &'a Solved, options: &'a DiffOptions) -> Result<Self> {
        let mut base = HashMap::new();
        for image in solved.images.values() {
            let pairs = image.layers().map_err(|e| Error::Snapshot {
                context: format!("reading the layers of {}", image.reference),
                source: Box::new(e),
            })?;
            let chain = chain_ids(pairs.iter().map(|(_, diff_id)| diff_id));
            for ((layer, (digest, diff_id)), chain_id) in image.manifest.layers().iter().zip(pairs).zip(chain) {
                let media_type = layer.media_type().to_string();
                let layer = LayerDescriptor { media_type, digest, size: layer.size(), diff_id };
                base.insert(chain_id.to_string(), layer);
            }
        }
        Ok(Self { solver, solved, options, base })
    }

    /// Each node's key and layers, each key once.
    fn records(&self, nodes: &[NodeId]) -> Result<Vec<(String, Vec<LayerDescriptor>)>> {
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        for node in nodes {
            let result = &self.solved.results[node];
            if !seen.insert(result.key.clone()) {
                continue;
            }
            let layers = match &result.snapshot {
                Some(snapshot) => self.chain(snapshot)?,
                None => Vec::new(),
            };
            records.push((result.key.clone(), layers));
        }
        Ok(records)
    }

    /// The layers, base first, that rebuild `snapshot`: one per snapshot of its parent chain.
    fn chain(&self, snapshot: &str) -> Result<Vec<LayerDescriptor>> {
        let metadata = self.solver.metadata();
        let mut names = Vec::new();
        let mut next = Some(snapshot.to_owned());
        while let Some(name) = next {
            let record = metadata.snapshot(&name).map_err(store_error(|| format!("reading snapshot {name}")))?;
            let record =
                record.ok_or_else(|| Error::Unsupported(format!("snapshot {name} is gone; cannot cache it")))?;
            next = record.parent;
            names.push(name);
        }
        let mut layers = Vec::new();
        let mut previous: Option<String> = None;
        for name in names.into_iter().rev() {
            let layer = match self.base.get(&name) {
                Some(layer) => layer.clone(),
                None => layer_of(self.solver, &name, previous.as_deref(), self.options)?,
            };
            layers.push(layer);
            previous = Some(name);
        }
        Ok(layers)
    }
}
