//! `strata run`: runs a command in a container over an image, like `docker run`, and exits with its code.

mod image;

use std::path::PathBuf;
use std::process::ExitCode;

use strata_runtime::{DEFAULT_PATH, Network, ProcessSpec, Rootfs, Runtime, Signal};
use tokio::signal::unix::{SignalKind, signal};

use crate::cmd::{CliError, Globals};
use image::resolve_image;
use strata_llb::ImageConfig;

/// Options of `strata run`, named as `docker run` names them.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Remove the container when it exits; containers are never kept yet, so this is always the case.
    #[arg(long)]
    rm: bool,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` to pass the caller's value).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// The user: `name`, `uid`, `name:group` or `uid:gid`.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// The working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<PathBuf>,
    /// `host` (the default) or `none` (loopback only).
    #[arg(long, default_value = "host", value_parser = parse_network)]
    network: Network,
    /// Bind-mount a host path: `SRC:DST[:ro|rw]`.
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    volumes: Vec<String>,
    /// Override the image's entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    /// The image: a name (`busybox`, `host:port/repo:tag`), pulled if not in the store, or `dir:ROOTFS`.
    image: String,
    /// The command and its arguments; the image's Cmd when omitted.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn parse_network(value: &str) -> Result<Network, String> {
    match value {
        "host" => Ok(Network::Host),
        "none" => Ok(Network::None),
        other => Err(format!("network {other:?} is not supported: use host or none")),
    }
}

/// Runs the container and returns the command's exit code as strata's.
pub fn run(globals: &Globals, args: RunArgs) -> Result<ExitCode, CliError> {
    let image = resolve_image(globals, &args.image)?;
    let spec = container_spec(Rootfs::Mounts(image.rootfs.clone()), &image.config, &args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("starting the async runtime: {e}")))?;
    let code = runtime.block_on(run_attached(&spec))?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

/// Docker's rules: `--entrypoint` replaces the image's entrypoint and drops its Cmd; CLI args replace Cmd.
fn container_spec(rootfs: Rootfs, config: &ImageConfig, args: &RunArgs) -> Result<ProcessSpec, CliError> {
    let (entrypoint, cmd) = match &args.entrypoint {
        Some(entrypoint) => (vec![entrypoint.clone()], args.command.clone()),
        None if args.command.is_empty() => {
            (config.entrypoint.clone().unwrap_or_default(), config.cmd.clone().unwrap_or_default())
        }
        None => (config.entrypoint.clone().unwrap_or_default(), args.command.clone()),
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(CliError(format!("{}: no command given and the image has no Entrypoint or Cmd", args.image)));
    }
    let mut spec = ProcessSpec::builder(rootfs, argv).network(args.network);
    let image_env = config.env.as_deref().unwrap_or_default();
    if !image_env.iter().any(|e| e.starts_with("PATH=")) {
        spec = spec.env("PATH", DEFAULT_PATH);
    }
    spec = spec.envs(image_env);
    for entry in &args.env {
        match entry.split_once('=') {
            Some(_) => spec = spec.envs([entry]),
            None => {
                if let Ok(value) = std::env::var(entry) {
                    spec = spec.env(entry, &value);
                }
            }
        }
    }
    let image_workdir = config.working_dir.as_deref().filter(|w| !w.is_empty()).map(PathBuf::from);
    let workdir = args.workdir.clone().or(image_workdir);
    if let Some(workdir) = workdir {
        spec = spec.cwd(workdir);
    }
    let image_user = config.user.as_deref().filter(|u| !u.is_empty());
    if let Some(user) = args.user.as_deref().or(image_user) {
        spec = spec.user(user);
    }
    for volume in &args.volumes {
        let (source, target, readonly) = parse_volume(volume)?;
        spec = spec.bind(source, target, readonly);
    }
    spec.build().map_err(CliError::from_display)
}

/// `SRC:DST[:ro|rw]` with an absolute host path; named volumes need a volume store strata does not have.
fn parse_volume(volume: &str) -> Result<(PathBuf, PathBuf, bool), CliError> {
    let parts: Vec<&str> = volume.split(':').collect();
    let (source, target, readonly) = match parts[..] {
        [source, target] => (source, target, false),
        [source, target, "ro"] => (source, target, true),
        [source, target, "rw"] => (source, target, false),
        _ => return Err(CliError(format!("volume {volume:?}: expected SRC:DST[:ro|rw]"))),
    };
    let source = std::path::absolute(source).map_err(|e| CliError(format!("volume {volume:?}: {e}")))?;
    if !source.exists() {
        return Err(CliError(format!("volume {volume:?}: {} does not exist", source.display())));
    }
    Ok((source, PathBuf::from(target), readonly))
}

/// Streams the container's output to ours and forwards SIGINT and SIGTERM; a second one kills the container.
async fn run_attached(spec: &ProcessSpec) -> Result<i32, CliError> {
    let mut container = Runtime::new().spawn(spec).map_err(CliError::from_display)?;
    let (mut out, mut err) = (container.stdout(), container.stderr());
    let copy_out = async {
        if let Some(out) = &mut out {
            let _ = tokio::io::copy(out, &mut tokio::io::stdout()).await;
        }
    };
    let copy_err = async {
        if let Some(err) = &mut err {
            let _ = tokio::io::copy(err, &mut tokio::io::stderr()).await;
        }
    };
    let listen = |kind| signal(kind).map_err(|e| CliError(format!("listening for signals: {e}")));
    let (mut interrupt, mut terminate) = (listen(SignalKind::interrupt())?, listen(SignalKind::terminate())?);
    let mut forwarded = false;
    let wait = async {
        loop {
            let received = tokio::select! {
                code = container.wait() => return code.map_err(CliError::from_display),
                _ = interrupt.recv() => Signal::SIGINT,
                _ = terminate.recv() => Signal::SIGTERM,
            };
            if forwarded {
                container.kill().map_err(CliError::from_display)?;
            } else {
                container.signal(received).map_err(CliError::from_display)?;
                forwarded = true;
            }
        }
    };
    let ((), (), code) = tokio::join!(copy_out, copy_err, wait);
    code
}
