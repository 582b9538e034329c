//! `-o/--output` specs as buildx takes them: `type=oci,dest=PATH[,tar=false]`, `type=docker,dest=FILE`,
//! `type=local,dest=DIR`, the `dest=PATH` shorthand for `type=local`, `type=tar,dest=FILE`; `dest=-` streams a
//! tar output (`tar`, `docker`, `oci`) to standard output;
//! `type=image,name=REF[,push=true]` and `type=registry,name=REF` (an image output that pushes).
//! Image outputs (oci, docker, image, registry) also take BuildKit's `compression=gzip|zstd|uncompressed`,
//! `compression-level=N`, `force-compression=BOOL` and `oci-mediatypes=BOOL`.

use std::path::PathBuf;

use strata_exporter::ImageFormat;
use strata_snapshotter::Compression;

use super::spec::Fields;
use crate::cmd::CliError;

/// Where the built image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI layout directory, named `name` (else the first `-t` tag) in its index.
    OciDir { dest: PathBuf, name: Option<String>, format: ImageFormat },
    /// A tar of an OCI layout (`docker: false`), or a `docker load` tarball; named `name` (else the first tag).
    ImageTar { dest: Dest, docker: bool, name: Option<String>, format: ImageFormat },
    /// The image's filesystem in a directory.
    Local { dest: PathBuf },
    /// The build result's filesystem as one tar: a file, or standard output for `dest=-`.
    Tar { dest: Dest },
    /// The image named in the store (`name`, else the `-t` tags), and pushed to the registry when `push`.
    Image { name: Option<String>, push: bool, format: ImageFormat },
}

/// Where a streamed output is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// `dest=-`.
    Stdout,
    /// `dest=PATH`.
    File(PathBuf),
}

impl Output {
    /// Parses one `--output` value.
    pub fn parse(spec: &str) -> Result<Self, CliError> {
        let fields = Fields::parse("--output", spec);
        let name = fields.get("name").map(str::to_owned);
        match fields.get("type") {
            Some("oci") if !fields.flag("tar", true)? => {
                let dest = fields.dest()?;
                if dest.as_os_str() == "-" {
                    return Err(fields.error("dest=- needs tar=true (a layout directory cannot be streamed)".into()));
                }
                Ok(Self::OciDir { dest, name, format: fields.format(true)? })
            }
            Some("oci") => {
                Ok(Self::ImageTar { dest: fields.stream()?, docker: false, name, format: fields.format(true)? })
            }
            Some("docker") => {
                Ok(Self::ImageTar { dest: fields.stream()?, docker: true, name, format: fields.format(false)? })
            }
            Some("local") | None => Ok(Self::Local { dest: fields.dest()? }),
            Some("tar") => Ok(Self::Tar { dest: fields.stream()? }),
            Some("image") => Ok(Self::Image { name, push: fields.flag("push", false)?, format: fields.format(false)? }),
            Some("registry") => Ok(Self::Image { name, push: true, format: fields.format(false)? }),
            Some(other) => Err(CliError(format!(
                "--output type={other} is not supported (oci, docker, local, tar, image and registry are)"
            ))),
        }
    }
}

/// The format of images named in the store without an image output saying otherwise: BuildKit's image
/// exporter defaults (gzip, Docker media types).
pub fn default_image_format() -> ImageFormat {
    ImageFormat::new().oci_media_types(false)
}

impl Fields<'_> {
    fn dest(&self) -> Result<PathBuf, CliError> {
        self.required("dest", "PATH").map(PathBuf::from)
    }

    /// The destination of a streamed output: a file, or standard output for `dest=-`.
    fn stream(&self) -> Result<Dest, CliError> {
        let dest = self.dest()?;
        Ok(if dest.as_os_str() == "-" { Dest::Stdout } else { Dest::File(dest) })
    }

    /// The image format fields; `oci_default` is whether the output type defaults to OCI media types.
    fn format(&self, oci_default: bool) -> Result<ImageFormat, CliError> {
        let compression = match self.get("compression") {
            None => Compression::Gzip,
            Some(value) => value.parse::<Compression>().map_err(|_| {
                self.error(format!("compression={value} is not supported (gzip, zstd or uncompressed)"))
            })?,
        };
        let mut oci = self.flag("oci-mediatypes", oci_default)?;
        if compression == Compression::Zstd && !oci {
            // BuildKit's EnableOCITypes: Docker media types have no zstd layer, so zstd switches to OCI.
            self.warn("forcibly turning on oci-mediatypes for zstd");
            oci = true;
        }
        let mut format = ImageFormat::new()
            .compression(compression)
            .force_compression(self.flag("force-compression", false)?)
            .oci_media_types(oci);
        if let Some(value) = self.get("compression-level") {
            let max = match compression {
                Compression::Gzip => 9,
                Compression::Zstd => 22,
                Compression::Uncompressed => u32::MAX,
            };
            let level = value.parse::<u32>().ok().filter(|level| *level <= max).ok_or_else(|| {
                self.error(format!("compression-level={value} is not a level of {compression} (0 to {max})"))
            })?;
            format = format.level(level);
        }
        Ok(format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> String {
        Output::parse(spec).unwrap_err().0
    }

    /// The format of the image `spec` writes; `None` for filesystem outputs.
    fn format_of(spec: &str) -> Option<ImageFormat> {
        match Output::parse(spec).unwrap() {
            Output::OciDir { format, .. } | Output::ImageTar { format, .. } | Output::Image { format, .. } => {
                Some(format)
            }
            Output::Local { .. } | Output::Tar { .. } => None,
        }
    }

    #[test]
    fn specs_parse_like_buildx() {
        let (oci, docker) = (ImageFormat::new(), ImageFormat::new().oci_media_types(false));
        assert_eq!(
            Output::parse("type=oci,dest=out,tar=false").unwrap(),
            Output::OciDir { dest: "out".into(), name: None, format: oci }
        );
        let file = |path: &str| Dest::File(path.into());
        assert_eq!(
            Output::parse("type=oci,dest=o.tar,name=a:1").unwrap(),
            Output::ImageTar { dest: file("o.tar"), docker: false, name: Some("a:1".into()), format: oci }
        );
        assert_eq!(Output::parse("dest=dir").unwrap(), Output::Local { dest: "dir".into() });
        assert_eq!(
            Output::parse("type=docker,dest=i.tar").unwrap(),
            Output::ImageTar { dest: file("i.tar"), docker: true, name: None, format: docker },
            "type=docker defaults to Docker media types"
        );
        assert!(err("type=oci").contains("--output type=oci: dest=PATH is required"));
        assert_eq!(
            Output::parse("type=image,name=r.io/a:1,push=true").unwrap(),
            Output::Image { name: Some("r.io/a:1".into()), push: true, format: docker }
        );
        assert_eq!(Output::parse("type=image").unwrap(), Output::Image { name: None, push: false, format: docker });
        assert_eq!(Output::parse("type=image,push").unwrap(), Output::Image { name: None, push: true, format: docker });
        assert_eq!(
            Output::parse("type=registry,name=r.io/a").unwrap(),
            Output::Image { name: Some("r.io/a".into()), push: true, format: docker }
        );
        assert!(err("type=image,push=yes").contains("type=image,push=yes: push=yes is not true or false"));
        assert!(err("type=cacheonly").contains("type=cacheonly is not supported"));
    }

    #[test]
    fn tar_outputs_write_a_file_or_standard_output() {
        assert_eq!(Output::parse("type=tar,dest=fs.tar").unwrap(), Output::Tar { dest: Dest::File("fs.tar".into()) });
        assert_eq!(Output::parse("type=tar,dest=-").unwrap(), Output::Tar { dest: Dest::Stdout });
        assert!(matches!(Output::parse("type=docker,dest=-").unwrap(), Output::ImageTar { dest: Dest::Stdout, .. }));
        assert!(matches!(Output::parse("type=oci,dest=-").unwrap(), Output::ImageTar { dest: Dest::Stdout, .. }));
        assert!(err("type=oci,dest=-,tar=false").contains("dest=- needs tar=true"));
        assert!(err("type=tar").contains("--output type=tar: dest=PATH is required"));
        assert!(err("type=tar,dest=").contains("dest=PATH is required"));
    }

    #[test]
    fn compression_fields_set_the_image_format() {
        let format = |spec: &str| format_of(spec).unwrap();
        assert_eq!(
            format("type=image,compression=uncompressed,oci-mediatypes=true"),
            ImageFormat::new().compression(Compression::Uncompressed)
        );
        assert_eq!(
            format("type=oci,dest=o,compression=gzip,compression-level=9,force-compression=true"),
            ImageFormat::new().level(9).force_compression(true)
        );
        assert_eq!(
            format("type=registry,name=r/a,compression=zstd,compression-level=19,force-compression"),
            ImageFormat::new().compression(Compression::Zstd).level(19).force_compression(true),
            "zstd switches type=registry to OCI media types"
        );
        assert_eq!(
            format("type=docker,dest=d.tar,compression=zstd,oci-mediatypes=false"),
            ImageFormat::new().compression(Compression::Zstd),
            "zstd switches even an explicit oci-mediatypes=false, as BuildKit does"
        );
        assert_eq!(format("type=oci,dest=o,oci-mediatypes=0"), ImageFormat::new().oci_media_types(false));
        assert_eq!(format_of("type=local,dest=d,compression=zstd"), None);
    }

    #[test]
    fn bad_compression_fields_name_the_spec_and_the_field() {
        assert_eq!(
            err("type=image,compression=brotli"),
            "--output type=image,compression=brotli: compression=brotli is not supported (gzip, zstd or uncompressed)"
        );
        assert_eq!(
            err("type=oci,dest=o,compression-level=10"),
            "--output type=oci,dest=o,compression-level=10: compression-level=10 is not a level of gzip (0 to 9)"
        );
        assert!(err("type=oci,dest=o,compression=zstd,compression-level=23").contains("not a level of zstd (0 to 22)"));
        assert!(err("type=oci,dest=o,compression-level=-1").contains("compression-level=-1 is not a level of gzip"));
        assert!(err("type=docker,dest=d,force-compression=maybe").contains("force-compression=maybe is not true"));
        assert!(err("type=docker,dest=d,oci-mediatypes=2").contains("oci-mediatypes=2 is not true or false"));
    }
}
