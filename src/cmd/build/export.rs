//! Writing a solved build where its outputs say: the image assembled once per format the outputs ask for (layers
//! are cached, so another format costs a manifest and a config, plus any layer it compresses differently), the
//! file and directory outputs, and the `--metadata-file` with the keys buildx writes.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;

use strata_exporter::{
    ExportOptions, Image, ImageFormat, assemble, write_docker_tar_to, write_local, write_oci_layout, write_oci_tar_to,
    write_tar_fs,
};
use strata_llb::Definition;
use strata_registry::Reference;
use strata_snapshotter::Digest;
use strata_snapshotter::metadata::RefTarget;
use strata_solver::{Solved, Solver};

use super::BuildArgs;
use super::output::{Dest, Output, default_image_format};
use crate::cmd::push::push_image;
use crate::cmd::store::{Stores, reference};
use crate::cmd::{CliError, Globals};

/// A store name for the image: the reference, whether it is pushed, and the image's format.
pub type ImageName = (Reference, bool, ImageFormat);

/// Writes every output, names the image in the store under `names` and pushes those that say so, and writes
/// `--metadata-file` for the first image written (else the first named). Returns that image's manifest digest.
pub fn export(
    globals: &Globals,
    stores: &Stores,
    args: &BuildArgs,
    outputs: &[Output],
    names: &[ImageName],
    mut exporter: Exporter<'_>,
) -> Result<Option<String>, CliError> {
    let mut written = None;
    for output in outputs {
        let image = exporter.write(output, args.tags.first().map(String::as_str))?;
        written = written.or(image);
    }
    let mut names_shown: Vec<String> = names.iter().map(|(name, ..)| name.to_string()).collect();
    // The root snapshot keeps its parents, the whole chain, alive for GC.
    let root = exporter.root().map(|s| RefTarget::Snapshot(s.to_owned()));
    let mut named = Vec::new();
    for (name, push, format) in names {
        let image = exporter.image(*format)?;
        let manifest: Digest = image.manifest.digest().to_string().parse().map_err(CliError::from_display)?;
        let mut targets = image
            .blobs()
            .map(|b| b.digest().to_string().parse().map(RefTarget::Blob))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CliError::from_display)?;
        targets.extend(root.clone());
        stores.name_image(name, &manifest, &targets)?;
        named.push((name, *push, manifest, image));
    }
    // An unnamed image output (or none at all) still assembles the image, for `--metadata-file`.
    let unnamed = outputs.is_empty() || outputs.iter().any(|o| matches!(o, Output::Image { .. }));
    let image = match (written, named.first()) {
        (Some((image, name)), _) => {
            names_shown.extend(name.filter(|_| names_shown.is_empty()));
            Some(image)
        }
        (None, Some((.., image))) => Some(image.clone()),
        (None, None) if unnamed => Some(exporter.image(tag_format(outputs))?),
        (None, None) => None,
    };
    if let Some(file) = &args.metadata_file {
        write_metadata(file, image.as_ref(), &names_shown)?;
    }
    for (name, _, manifest, _) in named.iter().filter(|(_, push, ..)| *push) {
        push_image(globals, stores, manifest, name, None)?;
    }
    Ok(image.map(|image| image.manifest.digest().to_string()))
}

/// The names the image gets in the store, each with whether it is pushed and in which format: the `-t` tags
/// (pushed with `--push`), and `type=image` outputs' `name`s; an image output without a name applies to the tags
/// (its push and its format).
pub fn image_names(args: &BuildArgs, outputs: &[Output]) -> Result<Vec<ImageName>, CliError> {
    let format = tag_format(outputs);
    let mut names =
        args.tags.iter().map(|tag| Ok((reference(tag)?, args.push, format))).collect::<Result<Vec<_>, _>>()?;
    let pushes_tags = args.push || outputs.iter().any(|o| matches!(o, Output::Image { name: None, push: true, .. }));
    if pushes_tags && args.tags.is_empty() {
        return Err(CliError("pushing needs a name: -t NAME[:TAG] or --output type=image,name=NAME".into()));
    }
    for output in outputs {
        match output {
            Output::Image { name: Some(name), push, format } => names.push((reference(name)?, *push, *format)),
            Output::Image { name: None, push: true, .. } => names.iter_mut().for_each(|(_, push, _)| *push = true),
            _ => {}
        }
    }
    Ok(names)
}

/// The format of the `-t` names: that of the first image output without a name, else BuildKit's default.
fn tag_format(outputs: &[Output]) -> ImageFormat {
    let unnamed = outputs.iter().find_map(|o| match o {
        Output::Image { name: None, format, .. } => Some(*format),
        _ => None,
    });
    unnamed.unwrap_or_else(default_image_format)
}

/// Assembles images of one solved build and writes its outputs.
pub struct Exporter<'a> {
    solver: &'a Solver,
    definition: &'a Definition,
    solved: &'a Solved,
    source_date_epoch: Option<i64>,
    inline_cache: bool,
    images: Vec<(ImageFormat, Image)>,
}

impl<'a> Exporter<'a> {
    /// An exporter of `solved`, the result of `definition`, clamping times to `source_date_epoch` if given.
    pub fn new(solver: &'a Solver, definition: &'a Definition, solved: &'a Solved, epoch: Option<i64>) -> Self {
        Self { solver, definition, solved, source_date_epoch: epoch, inline_cache: false, images: Vec::new() }
    }

    /// Embeds the steps' cache records in every image's config (`--cache-to type=inline`).
    pub fn inline_cache(mut self, inline: bool) -> Self {
        self.inline_cache = inline;
        self
    }

    /// The build result's snapshot; `None` for an empty `scratch` result.
    pub fn root(&self) -> Option<&'a str> {
        self.definition.root.and_then(|root| self.solved.snapshot(root))
    }

    /// The image in `format`, assembled on first use.
    pub fn image(&mut self, format: ImageFormat) -> Result<Image, CliError> {
        if let Some((_, image)) = self.images.iter().find(|(f, _)| *f == format) {
            return Ok(image.clone());
        }
        let options = ExportOptions::new()
            .source_date_epoch(self.source_date_epoch)
            .format(format)
            .inline_cache(self.inline_cache);
        let image = assemble(self.solver, self.definition, self.solved, &options).map_err(CliError::from_display)?;
        self.images.push((format, image.clone()));
        Ok(image)
    }

    /// Writes a file or directory output, naming the image `tag` unless the output names it; returns the image
    /// written and its name, if the output is an image. `type=image` outputs are named and pushed by the caller.
    pub fn write(&mut self, output: &Output, tag: Option<&str>) -> Result<Option<(Image, Option<String>)>, CliError> {
        let content = self.solver.content().clone();
        let (image, name, written) = match output {
            Output::OciDir { dest, name, format } => {
                let (image, name) = (self.image(*format)?, name.as_deref().or(tag));
                let written = write_oci_layout(&content, &image, name, dest).map_err(CliError::from_display);
                (image, name, written)
            }
            Output::ImageTar { dest, docker, name, format } => {
                let (image, name) = (self.image(*format)?, name.as_deref().or(tag));
                let kind = if *docker { "docker" } else { "oci" };
                let written = stream(dest, kind, |out| {
                    if *docker {
                        write_docker_tar_to(&content, &image, name, out)
                    } else {
                        write_oci_tar_to(&content, &image, name, out)
                    }
                });
                (image, name, written)
            }
            Output::Local { dest } => {
                // Every format has the same filesystem: reuse an image already assembled.
                let image = match self.images.first() {
                    Some((_, image)) => image.clone(),
                    None => self.image(ImageFormat::new())?,
                };
                return write_local(&content, &image, dest).map(|()| None).map_err(CliError::from_display);
            }
            Output::Tar { dest } => return self.write_tar(dest).map(|()| None),
            Output::Image { .. } => return Ok(None),
        };
        written?;
        Ok(Some((image, name.map(str::to_owned))))
    }

    /// `type=tar`: the result's filesystem streamed to a file or standard output.
    fn write_tar(&self, dest: &Dest) -> Result<(), CliError> {
        stream(dest, "tar", |out| write_tar_fs(self.solver, self.root(), self.source_date_epoch, out))
    }
}

/// Opens `dest` of a `type=KIND` output, has `write` stream into it, and flushes it; errors name the output.
fn stream(
    dest: &Dest,
    kind: &str,
    write: impl FnOnce(BufWriter<Box<dyn Write + '_>>) -> strata_exporter::Result<BufWriter<Box<dyn Write + '_>>>,
) -> Result<(), CliError> {
    let (out, shown): (Box<dyn Write>, String) = match dest {
        Dest::Stdout if std::io::stdout().is_terminal() => {
            return Err(CliError(format!("--output type={kind},dest=-: standard output is a terminal; redirect it")));
        }
        Dest::Stdout => (Box::new(std::io::stdout().lock()), "standard output".into()),
        Dest::File(path) => {
            let file = File::create(path)
                .map_err(|e| CliError(format!("--output type={kind}: creating {}: {e}", path.display())))?;
            (Box::new(file), path.display().to_string())
        }
    };
    let failed = |e: &dyn std::fmt::Display| CliError(format!("--output type={kind}: writing to {shown}: {e}"));
    let mut out = write(BufWriter::with_capacity(1 << 20, out)).map_err(|e| failed(&e))?;
    out.flush().map_err(|e| failed(&e))
}

/// Writes the `--metadata-file` for `image` named `names`, with the keys buildx writes for an image exporter;
/// filesystem outputs alone make no image, and an empty object, as BuildKit's local and tar exporters return none.
fn write_metadata(file: &Path, image: Option<&Image>, names: &[String]) -> Result<(), CliError> {
    let mut metadata = serde_json::json!({});
    if let Some(image) = image {
        metadata["containerimage.digest"] = image.manifest.digest().to_string().into();
        metadata["containerimage.config.digest"] = image.config.digest().to_string().into();
        metadata["containerimage.descriptor"] = serde_json::json!({
            "mediaType": image.manifest.media_type().to_string(),
            "digest": image.manifest.digest().to_string(),
            "size": image.manifest.size(),
        });
    }
    if image.is_some() && !names.is_empty() {
        metadata["image.name"] = names.join(",").into();
    }
    std::fs::write(file, metadata.to_string())
        .map_err(|e| CliError(format!("writing --metadata-file {}: {e}", file.display())))
}
