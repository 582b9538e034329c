//! `-o/--output` specs as buildx takes them: `type=oci,dest=PATH[,tar=false]`, `type=docker,dest=FILE`,
//! `type=local,dest=DIR`, the `dest=PATH` shorthand for `type=local`, `type=image,name=REF[,push=true]` and
//! `type=registry,name=REF` (an image output that pushes).

use std::path::PathBuf;

use crate::cmd::CliError;

/// Where the built image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI layout: a directory, or a tar of one.
    Oci { dest: PathBuf, tar: bool },
    /// A `docker load` tarball.
    Docker { dest: PathBuf },
    /// The image's filesystem in a directory.
    Local { dest: PathBuf },
    /// The image named in the store (`name`, else the `-t` tags), and pushed to the registry when `push`.
    Image { name: Option<String>, push: bool },
}

impl Output {
    /// Parses one `--output` value.
    pub fn parse(spec: &str) -> Result<Self, CliError> {
        let mut fields = std::collections::HashMap::new();
        for field in spec.split(',') {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            fields.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
        let dest = || {
            fields
                .get("dest")
                .map(PathBuf::from)
                .ok_or_else(|| CliError(format!("--output {spec}: dest=PATH is required")))
        };
        let flag = |key: &str, default: bool| match fields.get(key).map(String::as_str) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(CliError(format!("--output {spec}: {key}={other} is not true or false"))),
        };
        let name = fields.get("name").cloned();
        match fields.get("type").map(String::as_str) {
            Some("oci") => Ok(Self::Oci { dest: dest()?, tar: flag("tar", true)? }),
            Some("docker") => Ok(Self::Docker { dest: dest()? }),
            Some("local") | None => Ok(Self::Local { dest: dest()? }),
            Some("image") => Ok(Self::Image { name, push: flag("push", false)? }),
            Some("registry") => Ok(Self::Image { name, push: true }),
            Some(other) => Err(CliError(format!(
                "--output type={other} is not supported yet (oci, docker, local, image and registry are)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_like_buildx() {
        assert_eq!(
            Output::parse("type=oci,dest=out,tar=false").unwrap(),
            Output::Oci { dest: "out".into(), tar: false }
        );
        assert_eq!(Output::parse("type=oci,dest=o.tar").unwrap(), Output::Oci { dest: "o.tar".into(), tar: true });
        assert_eq!(Output::parse("dest=dir").unwrap(), Output::Local { dest: "dir".into() });
        assert_eq!(Output::parse("type=docker,dest=i.tar").unwrap(), Output::Docker { dest: "i.tar".into() });
        assert!(Output::parse("type=oci").is_err());
        assert_eq!(
            Output::parse("type=image,name=r.io/a:1,push=true").unwrap(),
            Output::Image { name: Some("r.io/a:1".into()), push: true }
        );
        assert_eq!(Output::parse("type=image").unwrap(), Output::Image { name: None, push: false });
        assert_eq!(
            Output::parse("type=registry,name=r.io/a").unwrap(),
            Output::Image { name: Some("r.io/a".into()), push: true }
        );
        assert!(Output::parse("type=image,push=yes").unwrap_err().0.contains("push=yes is not true or false"));
        assert!(Output::parse("type=tar,dest=x").unwrap_err().0.contains("not supported"));
    }
}
