//! The platform an image runs on, for picking one manifest out of a multi-platform index.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An OCI platform: operating system, architecture and optional variant (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The operating system, as in `GOOS` (`linux`).
    pub os: String,
    /// The architecture, as in `GOARCH` (`amd64`, `arm64`).
    pub architecture: String,
    /// The CPU variant (`v7`, `v8`); `None` accepts any.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine, as container runtimes name it.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Self { os: std::env::consts::OS.to_owned(), architecture: architecture.to_owned(), variant: None }
    }

    /// Whether an index entry's platform satisfies this one; a variant is compared only when asked for.
    pub fn matches(&self, candidate: &oci_spec::image::Platform) -> bool {
        candidate.os().to_string() == self.os
            && candidate.architecture().to_string() == self.architecture
            && self.variant.as_ref().is_none_or(|v| candidate.variant().as_deref() == Some(v.as_str()))
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidPlatform { platform: s.to_owned() };
        let mut parts = s.split('/');
        let (Some(os), Some(architecture)) = (parts.next(), parts.next()) else { return Err(invalid()) };
        let variant = parts.next().map(str::to_owned);
        if os.is_empty() || architecture.is_empty() || variant.as_deref() == Some("") || parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self { os: os.to_owned(), architecture: architecture.to_owned(), variant })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Arch, Os, PlatformBuilder};

    #[test]
    fn parses_and_matches() {
        let arm: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(arm.to_string(), "linux/arm/v7");
        let candidate =
            PlatformBuilder::default().os(Os::Linux).architecture(Arch::ARM).variant("v7".to_owned()).build().unwrap();
        assert!(arm.matches(&candidate));
        assert!("linux/arm".parse::<Platform>().unwrap().matches(&candidate));
        assert!(!"linux/arm/v6".parse::<Platform>().unwrap().matches(&candidate));
        assert!(!"linux/amd64".parse::<Platform>().unwrap().matches(&candidate));
        let amd64 = PlatformBuilder::default().os(Os::Linux).architecture(Arch::Amd64).build().unwrap();
        assert!("linux/amd64".parse::<Platform>().unwrap().matches(&amd64));
    }

    #[test]
    fn rejects_malformed_platforms() {
        for bad in ["", "linux", "linux/", "/amd64", "linux/arm/", "linux/arm/v7/x"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?} parsed");
        }
    }
}
