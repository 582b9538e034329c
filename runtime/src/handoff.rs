//! What the caller and the init say to each other over the two pipes the init inherits: the caller sends the
//! config and then just holds the control pipe open (its closing means "kill the container"); the init sends
//! one report when the container is done.

use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::rootless::UserNamespacePlan;
use crate::spec::ProcessSpec;

/// The init's fd for the control pipe: config in, then a lifeline.
pub(crate) const CONTROL_FD: RawFd = 3;
/// The init's fd for the report pipe.
pub(crate) const REPORT_FD: RawFd = 4;

/// Everything the init needs, prepared by the caller.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InitConfig {
    pub spec: ProcessSpec,
    /// Holds the generated `/etc` files and the rootfs mount point; outside the rootfs.
    pub state_dir: PathBuf,
    /// Set when the caller is not root.
    pub user_namespace: Option<UserNamespacePlan>,
}

/// How the container ended, as the init saw it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The command ran and exited with this code (128 + n for signal n).
    Exited(i32),
    /// The container could not be set up or the command not started; the message says why.
    Failed(String),
}

/// Sends the config as a 4-byte little-endian length and JSON: the pipe stays open, so no EOF ends it.
pub(crate) fn send_config(pipe: &mut impl Write, config: &InitConfig) -> Result<()> {
    let json = serde_json::to_vec(config)
        .map_err(|source| Error::Handoff { context: "encoding the init config".to_owned(), source })?;
    let length = u32::try_from(json.len()).map_err(|_| Error::InvalidSpec("the spec is over 4 GiB".to_owned()))?;
    pipe.write_all(&length.to_le_bytes())
        .and_then(|()| pipe.write_all(&json))
        .context(|| "sending the config to the container init".to_owned())
}

/// Reads what [`send_config`] sent.
pub(crate) fn receive_config(pipe: &mut impl Read) -> Result<InitConfig> {
    let what = || "reading the config from the caller (fd 3)".to_owned();
    let mut length = [0u8; 4];
    pipe.read_exact(&mut length).context(what)?;
    let mut json = vec![0u8; u32::from_le_bytes(length) as usize];
    pipe.read_exact(&mut json).context(what)?;
    serde_json::from_slice(&json).map_err(|source| Error::Handoff { context: what(), source })
}

/// Encodes a report; the init writes it once and exits.
pub(crate) fn encode_report(report: &Report) -> Vec<u8> {
    serde_json::to_vec(report).expect("a report always encodes")
}

/// Decodes the report pipe's contents; `None` when the init died before writing one.
pub(crate) fn decode_report(bytes: &[u8]) -> Result<Option<Report>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|source| Error::Handoff { context: "reading the container init's report".to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Rootfs;

    #[test]
    fn config_round_trips_through_a_pipe_that_stays_open() {
        let spec = ProcessSpec::builder(Rootfs::Directory("/r".into()), ["sh", "-c", "exit 3"]).build().unwrap();
        let config = InitConfig { spec: spec.clone(), state_dir: "/state".into(), user_namespace: None };
        let mut wire = Vec::new();
        send_config(&mut wire, &config).unwrap();
        wire.extend_from_slice(b"trailing bytes are not read");
        let received = receive_config(&mut wire.as_slice()).unwrap();
        assert_eq!(received.spec, spec);
        assert_eq!(received.state_dir, PathBuf::from("/state"));
    }

    #[test]
    fn reports_round_trip_and_silence_means_none() {
        let report = Report::Failed("no such user".into());
        assert_eq!(decode_report(&encode_report(&report)).unwrap(), Some(report));
        assert_eq!(decode_report(b"").unwrap(), None);
    }
}
