//! Manifest media types and telling an index from an image manifest, for OCI and Docker schema 2 alike.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use strata_snapshotter::Digest;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema 2 manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The `Accept` header of a manifest GET: every type strata can pull.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";
/// Manifests and configs are small; anything bigger is refused rather than held in memory.
pub const MAX_MANIFEST_SIZE: usize = 8 << 20;

/// A parsed manifest: either a multi-platform index or a single image's manifest.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// An OCI index or a Docker manifest list.
    Index(Box<ImageIndex>),
    /// An OCI or Docker schema 2 image manifest.
    Image(Box<ImageManifest>),
}

impl Manifest {
    /// Parses `bytes`, told apart by their `mediaType` (or, when absent, the `Content-Type` or the shape).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<(Self, String), String> {
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(rename = "schemaVersion")]
            schema_version: Option<u32>,
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        if probe.schema_version != Some(2) {
            return Err(format!("schemaVersion {:?} is not supported (only 2)", probe.schema_version));
        }
        let content_type =
            content_type.map(|c| c.split(';').next().unwrap_or(c).trim()).filter(|c| c.contains("+json"));
        let media_type = match (probe.media_type, content_type) {
            (Some(media_type), _) => media_type,
            (None, Some(content_type)) => content_type.to_owned(),
            (None, None) if probe.manifests.is_some() => OCI_INDEX.to_owned(),
            (None, None) => OCI_MANIFEST.to_owned(),
        };
        let manifest = match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => {
                Self::Index(Box::new(ImageIndex::from_reader(bytes).map_err(|e| e.to_string())?))
            }
            OCI_MANIFEST | DOCKER_MANIFEST => {
                Self::Image(Box::new(ImageManifest::from_reader(bytes).map_err(|e| e.to_string())?))
            }
            other => return Err(format!("unsupported media type {other:?}")),
        };
        Ok((manifest, media_type))
    }
}

/// A descriptor's digest as a content-store digest; only sha256 is supported.
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest, String> {
    descriptor.digest().to_string().parse().map_err(|e: strata_snapshotter::Error| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: &str = r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}"#;

    fn manifest_json(media_type: Option<&str>) -> String {
        let media_type = media_type.map(|m| format!(r#""mediaType":"{m}","#)).unwrap_or_default();
        format!(r#"{{"schemaVersion":2,{media_type}"config":{LAYER},"layers":[{LAYER}]}}"#)
    }

    #[test]
    fn tells_indexes_from_manifests() {
        let (m, t) = Manifest::parse(manifest_json(Some(DOCKER_MANIFEST)).as_bytes(), None).unwrap();
        assert!(matches!(m, Manifest::Image(_)));
        assert_eq!(t, DOCKER_MANIFEST);
        let (_, t) =
            Manifest::parse(manifest_json(None).as_bytes(), Some("application/vnd.oci.image.manifest.v1+json; x=y"))
                .unwrap();
        assert_eq!(t, OCI_MANIFEST);
        let (_, t) = Manifest::parse(manifest_json(None).as_bytes(), Some("application/octet-stream")).unwrap();
        assert_eq!(t, OCI_MANIFEST);
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{LAYER}]}}"#);
        let (m, t) = Manifest::parse(index.as_bytes(), None).unwrap();
        assert!(matches!(m, Manifest::Index(_)));
        assert_eq!(t, OCI_INDEX);
    }

    #[test]
    fn refuses_schema1_and_unknown_types() {
        assert!(Manifest::parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).unwrap_err().contains("schemaVersion"));
        let odd = manifest_json(Some("application/vnd.example+json"));
        assert!(Manifest::parse(odd.as_bytes(), None).unwrap_err().contains("unsupported media type"));
    }
}
