//! `-o/--output` specs as buildx takes them: `type=oci,dest=PATH[,tar=false]`, `type=docker,dest=FILE`,
//! `type=local,dest=DIR`, and the `dest=PATH` shorthand for `type=local`.

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
        match fields.get("type").map(String::as_str) {
            Some("oci") => {
                let tar = match fields.get("tar").map(String::as_str) {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(other) => return Err(CliError(format!("--output {spec}: tar={other} is not true or false"))),
                };
                Ok(Self::Oci { dest: dest()?, tar })
            }
            Some("docker") => Ok(Self::Docker { dest: dest()? }),
            Some("local") | None => Ok(Self::Local { dest: dest()? }),
            Some(other) => {
                Err(CliError(format!("--output type={other} is not supported yet (oci, docker and local are)")))
            }
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
        assert!(Output::parse("type=registry,ref=x").unwrap_err().0.contains("not supported"));
    }
}
