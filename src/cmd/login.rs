//! `strata login` and `strata logout`: check credentials against a registry and keep them in Docker's config.

use std::io::Read as _;
use std::process::ExitCode;

use strata_registry::{CredentialStore, Credentials, RegistryClient, RegistryConfig};

use super::store::block_on;
use super::{CliError, Globals};

/// Arguments of `strata login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry host (`127.0.0.1:5000`, `docker.io`).
    pub registry: String,
    /// The user name.
    #[arg(short, long)]
    pub username: String,
    /// The password (visible to other users in the process list; prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Arguments of `strata logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry host.
    pub registry: String,
}

/// Verifies the credentials with the registry, then saves them as `docker login` does.
pub fn run_login(globals: &Globals, args: LoginArgs) -> Result<ExitCode, CliError> {
    let password = match (args.password, args.password_stdin) {
        (Some(password), _) => password,
        (None, true) => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password).map_err(|e| CliError(format!("reading stdin: {e}")))?;
            password.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => return Err(CliError("give the password with -p or --password-stdin".into())),
    };
    let credentials = Credentials::new(args.username, password);
    let store = CredentialStore::from_env();
    let config = RegistryConfig::load_optional(globals.config.as_deref()).map_err(CliError::from_display)?;
    let client = RegistryClient::builder()
        .config(config)
        .credentials(store.clone().with_credentials(args.registry.clone(), credentials.clone()))
        .build();
    block_on(client.verify_login(&args.registry))?.map_err(CliError::from_display)?;
    store.save(&args.registry, &credentials).map_err(CliError::from_display)?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

/// Removes saved credentials for the registry.
pub fn run_logout(_globals: &Globals, args: LogoutArgs) -> Result<ExitCode, CliError> {
    let removed = CredentialStore::from_env().erase(&args.registry).map_err(CliError::from_display)?;
    if removed {
        println!("Removing login credentials for {}", args.registry);
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError(format!("not logged in to {}", args.registry)))
    }
}
