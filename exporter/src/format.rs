//! How an image is encoded, as BuildKit's image exporters take it (`compression`, `compression-level`,
//! `force-compression`, `oci-mediatypes`), and the OCI/Docker layer media type mapping of BuildKit's
//! `util/compression` (`toOCILayerType`, `toDockerLayerType`).

use oci_spec::image::MediaType;
use strata_snapshotter::{Compression, DiffOptions};

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Layer media types that mean the same thing: (OCI, Docker, compression). Docker has no nondistributable
/// zstd type, so that OCI type keeps its name in a Docker manifest, as in BuildKit.
const LAYER_TYPES: [(&str, Option<&str>, Compression); 6] = [
    (
        "application/vnd.oci.image.layer.v1.tar",
        Some("application/vnd.docker.image.rootfs.diff.tar"),
        Compression::Uncompressed,
    ),
    (
        "application/vnd.oci.image.layer.v1.tar+gzip",
        Some("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        Compression::Gzip,
    ),
    (
        "application/vnd.oci.image.layer.v1.tar+zstd",
        Some("application/vnd.docker.image.rootfs.diff.tar.zstd"),
        Compression::Zstd,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        Some("application/vnd.docker.image.rootfs.foreign.diff.tar"),
        Compression::Uncompressed,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        Some("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
        Compression::Gzip,
    ),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", None, Compression::Zstd),
];

/// The encoding of an image: compression of its layers and OCI or Docker media types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFormat {
    compression: Compression,
    level: Option<u32>,
    force_compression: bool,
    oci_media_types: bool,
}

impl Default for ImageFormat {
    fn default() -> Self {
        Self { compression: Compression::Gzip, level: None, force_compression: false, oci_media_types: true }
    }
}

impl ImageFormat {
    /// gzip at its default level, base layers as they are, OCI media types.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the compression of new layers (and of base layers, with [`force_compression`](Self::force_compression)).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the compression level; the compression's default otherwise.
    pub fn level(mut self, level: u32) -> Self {
        self.level = Some(level);
        self
    }

    /// Recompresses base-image layers that are compressed otherwise, instead of reusing them as they are.
    pub fn force_compression(mut self, force: bool) -> Self {
        self.force_compression = force;
        self
    }

    /// Uses OCI media types when true, Docker's when false (ignored for zstd: Docker has no zstd type).
    pub fn oci_media_types(mut self, oci: bool) -> Self {
        self.oci_media_types = oci;
        self
    }

    /// Whether the image gets OCI media types: as asked, and always with zstd, as BuildKit forces it.
    pub fn uses_oci_media_types(&self) -> bool {
        self.oci_media_types || self.compression == Compression::Zstd
    }

    /// The manifest's media type.
    pub fn manifest_media_type(&self) -> MediaType {
        if self.uses_oci_media_types() { MediaType::ImageManifest } else { MediaType::from(DOCKER_MANIFEST) }
    }

    /// The config's media type.
    pub fn config_media_type(&self) -> MediaType {
        if self.uses_oci_media_types() { MediaType::ImageConfig } else { MediaType::from(DOCKER_CONFIG) }
    }

    /// `media_type` (a layer's, OCI or Docker) in this format's family; unknown types are kept as they are.
    pub fn layer_media_type(&self, media_type: &str) -> String {
        let oci = self.uses_oci_media_types();
        match LAYER_TYPES.iter().find(|(o, d, _)| *o == media_type || *d == Some(media_type)) {
            Some((o, _, _)) if oci => (*o).to_owned(),
            Some((_, Some(d), _)) => (*d).to_owned(),
            _ => media_type.to_owned(),
        }
    }

    /// Whether a base layer of `media_type` must be recompressed: only with `force-compression`, and only
    /// when its compression is known and differs.
    pub fn recompresses(&self, media_type: &str) -> bool {
        self.force_compression && layer_compression(media_type).is_some_and(|c| c != self.compression)
    }

    /// Options making layers in this format, their times clamped to `source_date_epoch`.
    pub fn diff_options(&self, source_date_epoch: Option<i64>) -> DiffOptions {
        let mut options = DiffOptions::new().compression(self.compression);
        if let Some(level) = self.level {
            options = options.level(level);
        }
        if let Some(epoch) = source_date_epoch {
            options = options.source_date_epoch(epoch);
        }
        options
    }
}

/// The compression a layer media type (OCI or Docker) says its blob has.
pub(crate) fn layer_compression(media_type: &str) -> Option<Compression> {
    LAYER_TYPES.iter().find(|(o, d, _)| *o == media_type || *d == Some(media_type)).map(|(_, _, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    #[test]
    fn layer_types_map_between_oci_and_docker() {
        let oci = ImageFormat::new();
        let docker = ImageFormat::new().oci_media_types(false);
        assert_eq!(oci.layer_media_type(DOCKER_GZIP), OCI_GZIP);
        assert_eq!(docker.layer_media_type(OCI_GZIP), DOCKER_GZIP);
        assert_eq!(
            docker.layer_media_type("application/vnd.oci.image.layer.v1.tar"),
            "application/vnd.docker.image.rootfs.diff.tar"
        );
        assert_eq!(
            oci.layer_media_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        );
        assert_eq!(oci.layer_media_type("application/x-unknown"), "application/x-unknown");
        assert_eq!(docker.manifest_media_type().as_ref(), DOCKER_MANIFEST);
        assert_eq!(docker.config_media_type().as_ref(), DOCKER_CONFIG);
        assert_eq!(oci.manifest_media_type(), MediaType::ImageManifest);
    }

    #[test]
    fn zstd_forces_oci_media_types() {
        let zstd = ImageFormat::new().compression(Compression::Zstd).oci_media_types(false);
        assert!(zstd.uses_oci_media_types());
        assert_eq!(zstd.layer_media_type(DOCKER_GZIP), OCI_GZIP);
        assert_eq!(zstd.manifest_media_type(), MediaType::ImageManifest);
    }

    #[test]
    fn only_forced_compression_of_another_kind_recompresses() {
        let zstd = ImageFormat::new().compression(Compression::Zstd);
        assert!(!zstd.recompresses(OCI_GZIP), "base layers are reused unless forced");
        let forced = zstd.force_compression(true);
        assert!(forced.recompresses(OCI_GZIP) && forced.recompresses(DOCKER_GZIP));
        assert!(!forced.recompresses("application/vnd.oci.image.layer.v1.tar+zstd"));
        assert!(!forced.recompresses("application/x-unknown"), "unknown blobs are left alone");
        assert_eq!(forced.diff_options(Some(1)).cache_key(), "zstd-3-epoch-1");
        assert_eq!(zstd.level(19).diff_options(None).cache_key(), "zstd-19-epoch-none");
    }
}
