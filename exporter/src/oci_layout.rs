//! `type=oci`: the image as an OCI image layout, either a directory (`tar=false`) or a tar stream of one;
//! `type=docker`: that tar with Docker's `manifest.json` beside it, for `docker load`.
//! Blobs are hard-linked from the content store when they can be, and always streamed, never held in memory.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType};
use strata_snapshotter::{ContentStore, Digest};

use crate::{Error, Image, Result, io_error, store_error};

const LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes `image` as an OCI layout directory at `dir`, named `name` (`repo:tag`) if given.
pub fn write_oci_layout(content: &ContentStore, image: &Image, name: Option<&str>, dir: &Path) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_error(|| format!("creating {}", blobs.display())))?;
    for blob in image.blobs() {
        let digest = store_digest(blob)?;
        let target = blobs.join(digest.hex());
        if target.exists() {
            continue;
        }
        let source = content.blob_path(&digest);
        if fs::hard_link(&source, &target).is_err() {
            fs::copy(&source, &target).map_err(io_error(|| format!("copying {digest} to {}", target.display())))?;
        }
    }
    fs::write(dir.join("oci-layout"), LAYOUT_FILE)
        .map_err(io_error(|| format!("writing {}/oci-layout", dir.display())))?;
    fs::write(dir.join("index.json"), index_json(image, name)?)
        .map_err(io_error(|| format!("writing {}/index.json", dir.display())))
}

/// Writes `image` as a tar of an OCI layout to `file`, named `name` if given.
pub fn write_oci_tar(content: &ContentStore, image: &Image, name: Option<&str>, file: &Path) -> Result<()> {
    to_file(file, |out| write_oci_tar_to(content, image, name, out))
}

/// Streams `image` as a tar of an OCI layout to `out`, named `name` if given; returns `out`.
pub fn write_oci_tar_to<W: Write>(content: &ContentStore, image: &Image, name: Option<&str>, out: W) -> Result<W> {
    write_tar(content, image, name, out, false)
}

/// Writes `image` as a `docker load` tarball to `file`: the OCI layout plus Docker's `manifest.json`, as
/// `docker save` writes it since Docker 25.
pub fn write_docker_tar(content: &ContentStore, image: &Image, name: Option<&str>, file: &Path) -> Result<()> {
    to_file(file, |out| write_docker_tar_to(content, image, name, out))
}

/// Streams `image` as a `docker load` tarball to `out`, named `name` if given; returns `out`.
pub fn write_docker_tar_to<W: Write>(content: &ContentStore, image: &Image, name: Option<&str>, out: W) -> Result<W> {
    write_tar(content, image, name, out, true)
}

/// Creates `file` and has `write` fill it.
fn to_file(file: &Path, write: impl FnOnce(BufWriter<File>) -> Result<BufWriter<File>>) -> Result<()> {
    let context = || format!("writing {}", file.display());
    let out = File::create(file).map_err(io_error(context))?;
    write(BufWriter::with_capacity(1 << 20, out))?.flush().map_err(io_error(context))
}

fn write_tar<W: Write>(content: &ContentStore, image: &Image, name: Option<&str>, out: W, docker: bool) -> Result<W> {
    let context = || "writing the image tar".to_owned();
    let mut tar = tar::Builder::new(out);
    append(&mut tar, "oci-layout", LAYOUT_FILE.len() as u64, LAYOUT_FILE.as_bytes()).map_err(io_error(context))?;
    let index = index_json(image, name)?;
    append(&mut tar, "index.json", index.len() as u64, index.as_slice()).map_err(io_error(context))?;
    if docker {
        let blob = |d: &Descriptor| store_digest(d).map(|d| format!("blobs/sha256/{}", d.hex()));
        let manifest = serde_json::json!([{
            "Config": blob(&image.config)?,
            "RepoTags": name.into_iter().collect::<Vec<_>>(),
            "Layers": image.layers.iter().map(blob).collect::<Result<Vec<_>>>()?,
        }]);
        let manifest = manifest.to_string();
        append(&mut tar, "manifest.json", manifest.len() as u64, manifest.as_bytes()).map_err(io_error(context))?;
    }
    let mut written = std::collections::HashSet::new();
    for blob in image.blobs() {
        let digest = store_digest(blob)?;
        if !written.insert(digest.clone()) {
            continue;
        }
        let reader = content.open_blob(&digest).map_err(store_error(|| format!("opening blob {digest}")))?;
        let size = content.size(&digest).map_err(store_error(|| format!("sizing blob {digest}")))?;
        append(&mut tar, &format!("blobs/sha256/{}", digest.hex()), size, reader).map_err(io_error(context))?;
    }
    tar.into_inner().and_then(|mut w| w.flush().map(|()| w)).map_err(io_error(context))
}

/// Appends a regular file with fixed metadata, so the same image gives the same tar.
fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, size: u64, data: impl std::io::Read) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, data)
}

/// The layout's index: the one manifest, annotated with its name as BuildKit does.
fn index_json(image: &Image, name: Option<&str>) -> Result<Vec<u8>> {
    let mut manifest = image.manifest.clone();
    if let Some(name) = name {
        let tag = name.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or("latest", |(_, t)| t);
        manifest.set_annotations(Some(HashMap::from([
            ("io.containerd.image.name".to_owned(), name.to_owned()),
            ("org.opencontainers.image.ref.name".to_owned(), tag.to_owned()),
        ])));
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest])
        .build()
        .map_err(|e| Error::Oci { context: "building the layout index".into(), reason: e.to_string() })?;
    serde_json::to_vec(&index)
        .map_err(|e| Error::Oci { context: "serialising the layout index".into(), reason: e.to_string() })
}

/// The content store's digest of a descriptor.
pub(crate) fn store_digest(descriptor: &Descriptor) -> Result<Digest> {
    descriptor.digest().to_string().parse().map_err(|e: strata_snapshotter::Error| Error::Oci {
        context: format!("reading the digest of a {}", descriptor.media_type()),
        reason: e.to_string(),
    })
}
