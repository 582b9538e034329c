//! What RUN steps may do, from `--allow`, `--network` and `--ssh`, applied to the solver.

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
    let network = match args.network.as_deref() {
        None | Some("default") => NetworkMode::Default,
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(other) => return Err(CliError(format!("--network {other}: must be default, none or host"))),
    };
    let agents = agents(&args.ssh)?;
    for (id, socket) in &agents.sockets {
        solver = solver.ssh(id, socket);
    }
    Ok((solver.network(network), agents))
}
