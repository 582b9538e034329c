//! What RUN steps may do, from `--allow` and `--ssh` applied to the solver, and `--network` for lowering.

use strata_llb::NetworkMode;
use strata_solver::SolverBuilder;

use super::BuildArgs;
use super::ssh::{Agents, agents};
use crate::cmd::CliError;

/// Applies the flags to `solver`; the returned agents must live until the solve ends.
pub fn apply(mut solver: SolverBuilder, args: &BuildArgs) -> Result<(SolverBuilder, Agents), CliError> {
    for entitlement in &args.allow {
        match entitlement.as_str() {
            "security.insecure" => solver = solver.allow_insecure(true),
            // RUN steps get the host's network by default already; nothing more to grant.
            "network.host" => {}
            other => {
                return Err(CliError(format!(
                    "--allow {other}: unknown entitlement (network.host, security.insecure)"
                )));
            }
        }
    }
    let agents = agents(&args.ssh)?;
    for (id, socket) in &agents.sockets {
        solver = solver.ssh(id, socket);
    }
    Ok((solver, agents))
}

/// `--network`: buildx's `default`, `none` and `host`.
pub fn network_mode(flag: Option<&str>) -> Result<NetworkMode, CliError> {
    match flag {
        None | Some("default") => Ok(NetworkMode::Default),
        Some("none") => Ok(NetworkMode::None),
        Some("host") => Ok(NetworkMode::Host),
        Some(other) => Err(CliError(format!("--network {other}: must be default, none or host"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_modes_are_buildx_names() {
        assert_eq!(network_mode(None).unwrap(), NetworkMode::Default);
        assert_eq!(network_mode(Some("none")).unwrap(), NetworkMode::None);
        assert_eq!(network_mode(Some("host")).unwrap(), NetworkMode::Host);
        assert!(network_mode(Some("bridge")).unwrap_err().0.contains("--network bridge"));
    }
}
