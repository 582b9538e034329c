//! What to run and over which root filesystem, built with [`ProcessSpec::builder`] and checked by `build`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use strata_snapshotter::mount::Mount;

use crate::error::{Error, Result};

/// Where the container's `/` comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rootfs {
    /// Mounts applied in order at the new root, as a snapshotter hands them out (`overlay` or `bind`).
    Mounts(Vec<Mount>),
    /// A directory used as it is; missing mount points (`/etc/hosts`, `/proc`, ...) are created in it.
    Directory(PathBuf),
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// The host's network namespace, with the host's `/etc/resolv.conf` and `/etc/hosts`.
    #[default]
    Host,
    /// A network namespace of its own with only the loopback interface, up.
    None,
}

/// A mount inside the container: binds, tmpfs, and the cache and secret mounts the solver hands in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerMount {
    /// Absolute path inside the container.
    pub(crate) target: PathBuf,
    /// What to mount there.
    pub(crate) mount: Mount,
}

/// A resource limit; `setrlimit(2)` names without the `RLIMIT_` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RlimitResource {
    /// `RLIMIT_AS`.
    As,
    /// `RLIMIT_CORE`.
    Core,
    /// `RLIMIT_CPU`.
    Cpu,
    /// `RLIMIT_DATA`.
    Data,
    /// `RLIMIT_FSIZE`.
    Fsize,
    /// `RLIMIT_MEMLOCK`.
    Memlock,
    /// `RLIMIT_NOFILE`.
    Nofile,
    /// `RLIMIT_NPROC`.
    Nproc,
    /// `RLIMIT_STACK`.
    Stack,
}

impl RlimitResource {
    /// The resource as `setrlimit` takes it.
    pub(crate) fn to_nix(self) -> nix::sys::resource::Resource {
        use nix::sys::resource::Resource;
        match self {
            Self::As => Resource::RLIMIT_AS,
            Self::Core => Resource::RLIMIT_CORE,
            Self::Cpu => Resource::RLIMIT_CPU,
            Self::Data => Resource::RLIMIT_DATA,
            Self::Fsize => Resource::RLIMIT_FSIZE,
            Self::Memlock => Resource::RLIMIT_MEMLOCK,
            Self::Nofile => Resource::RLIMIT_NOFILE,
            Self::Nproc => Resource::RLIMIT_NPROC,
            Self::Stack => Resource::RLIMIT_STACK,
        }
    }
}

/// A soft and hard limit for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rlimit {
    /// Which resource.
    pub(crate) resource: RlimitResource,
    /// The limit the process sees.
    pub(crate) soft: u64,
    /// The ceiling it may raise the soft limit to.
    pub(crate) hard: u64,
}

/// PATH for images whose config sets none, as Docker and BuildKit use.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A checked description of one container process; make it with [`ProcessSpec::builder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub(crate) rootfs: Rootfs,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: PathBuf,
    pub(crate) user: String,
    pub(crate) hostname: String,
    pub(crate) network: Network,
    pub(crate) mounts: Vec<ContainerMount>,
    pub(crate) readonly_rootfs: bool,
    pub(crate) rlimits: Vec<Rlimit>,
    pub(crate) privileged: bool,
}

impl ProcessSpec {
    /// Starts a spec running `args` (argv, looked up in the container's PATH) over `rootfs`.
    pub fn builder(rootfs: Rootfs, args: impl IntoIterator<Item = impl Into<String>>) -> ProcessSpecBuilder {
        ProcessSpecBuilder {
            spec: ProcessSpec {
                rootfs,
                args: args.into_iter().map(Into::into).collect(),
                env: Vec::new(),
                cwd: PathBuf::from("/"),
                user: "0".to_owned(),
                hostname: "strata".to_owned(),
                network: Network::default(),
                mounts: Vec::new(),
                readonly_rootfs: false,
                rlimits: Vec::new(),
                privileged: false,
            },
        }
    }

    /// The command line.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The environment as `KEY=VALUE` entries, without the HOME the init adds when missing.
    pub fn env(&self) -> &[String] {
        &self.env
    }

    /// The value of `key` in the environment, if set.
    pub(crate) fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|entry| entry.strip_prefix(key)?.strip_prefix('='))
    }
}

/// Builds a [`ProcessSpec`]; every setter has Docker's default when not called.
#[derive(Debug, Clone)]
pub struct ProcessSpecBuilder {
    spec: ProcessSpec,
}

impl ProcessSpecBuilder {
    /// Sets one environment variable, replacing an earlier value of the same key.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.spec.env.retain(|entry| entry.split_once('=').map(|(k, _)| k) != Some(key));
        self.spec.env.push(format!("{key}={value}"));
        self
    }

    /// Sets environment variables from `KEY=VALUE` entries, later entries winning.
    pub fn envs(mut self, entries: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        for entry in entries {
            let entry = entry.as_ref();
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            self = self.env(key, value);
        }
        self
    }

    /// The working directory inside the container (default `/`); created when missing, as Docker does.
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.spec.cwd = cwd.into();
        self
    }

    /// The user: `name`, `uid`, `name:group` or `uid:gid`, resolved in the rootfs's passwd and group files.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.spec.user = user.into();
        self
    }

    /// The container's hostname (default `strata`).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.spec.hostname = hostname.into();
        self
    }

    /// The network (default [`Network::Host`]).
    pub fn network(mut self, network: Network) -> Self {
        self.spec.network = network;
        self
    }

    /// Bind-mounts a host file or directory at `target`, read-only when asked.
    pub fn bind(self, source: impl Into<PathBuf>, target: impl Into<PathBuf>, readonly: bool) -> Self {
        let mut options = vec!["rbind".to_owned()];
        options.push(if readonly { "ro" } else { "rw" }.to_owned());
        self.mount(target, Mount { fs_type: "bind".to_owned(), source: source.into(), options })
    }

    /// Mounts an empty tmpfs at `target`.
    pub fn tmpfs(self, target: impl Into<PathBuf>) -> Self {
        let options = ["nosuid", "nodev", "mode=1777"].map(String::from).to_vec();
        self.mount(target, Mount { fs_type: "tmpfs".to_owned(), source: PathBuf::from("tmpfs"), options })
    }

    /// Mounts any containerd-style mount at `target`: cache mounts, secrets, other snapshots.
    pub fn mount(mut self, target: impl Into<PathBuf>, mount: Mount) -> Self {
        self.spec.mounts.push(ContainerMount { target: target.into(), mount });
        self
    }

    /// Makes `/` read-only (the mounts stay as they are).
    pub fn readonly_rootfs(mut self, readonly: bool) -> Self {
        self.spec.readonly_rootfs = readonly;
        self
    }

    /// Gives the command every capability instead of Docker's default set (`RUN --security=insecure`,
    /// `docker run --privileged`); a non-root user still loses them on `setuid`.
    pub fn privileged(mut self, privileged: bool) -> Self {
        self.spec.privileged = privileged;
        self
    }

    /// Sets a resource limit; `build` refuses limits above this process's hard limits.
    pub fn rlimit(mut self, resource: RlimitResource, soft: u64, hard: u64) -> Self {
        self.spec.rlimits.retain(|limit| limit.resource != resource);
        self.spec.rlimits.push(Rlimit { resource, soft, hard });
        self
    }

    /// Checks the spec and returns it.
    pub fn build(self) -> Result<ProcessSpec> {
        let spec = self.spec;
        if spec.args.is_empty() || spec.args[0].is_empty() {
            return Err(Error::InvalidSpec("no command to run: args are empty".to_owned()));
        }
        require_absolute("working directory", &spec.cwd)?;
        for mount in &spec.mounts {
            require_absolute("mount target", &mount.target)?;
        }
        if let Rootfs::Directory(dir) = &spec.rootfs {
            require_absolute("rootfs directory", dir)?;
        }
        if spec.hostname.is_empty() || spec.hostname.len() > 64 {
            return Err(Error::InvalidSpec(format!("hostname {:?} must be 1 to 64 bytes", spec.hostname)));
        }
        for limit in &spec.rlimits {
            check_rlimit(limit)?;
        }
        Ok(spec)
    }
}

fn require_absolute(what: &str, path: &Path) -> Result<()> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(Error::InvalidSpec(format!("{what} {} must be an absolute path", path.display())))
    }
}

/// Without CAP_SYS_RESOURCE a hard limit can only be lowered, so refuse early with the reason.
fn check_rlimit(limit: &Rlimit) -> Result<()> {
    if limit.soft > limit.hard {
        return Err(Error::InvalidSpec(format!(
            "{:?} soft limit {} is above its hard limit {}",
            limit.resource, limit.soft, limit.hard
        )));
    }
    let (_, current_hard) = nix::sys::resource::getrlimit(limit.resource.to_nix())
        .map_err(|source| Error::Sys { context: format!("reading the {:?} limit", limit.resource), source })?;
    if limit.hard > current_hard {
        return Err(Error::InvalidSpec(format!(
            "{:?} hard limit {} is above this process's hard limit {current_hard}, which only CAP_SYS_RESOURCE may raise",
            limit.resource, limit.hard
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> Rootfs {
        Rootfs::Directory(PathBuf::from("/nonexistent"))
    }

    #[test]
    fn later_env_values_replace_earlier_ones() {
        let spec = ProcessSpec::builder(rootfs(), ["true"]).envs(["A=1", "B=2", "A=3"]).build().unwrap();
        assert_eq!(spec.env(), ["B=2", "A=3"]);
        assert_eq!(spec.env_var("A"), Some("3"));
        assert_eq!(spec.env_var("C"), None);
    }

    #[test]
    fn relative_paths_and_empty_commands_are_refused() {
        let err = ProcessSpec::builder(rootfs(), ["true"]).cwd("tmp").build().unwrap_err();
        assert!(err.to_string().contains("working directory tmp must be an absolute path"), "{err}");
        let err = ProcessSpec::builder(rootfs(), Vec::<String>::new()).build().unwrap_err();
        assert!(err.to_string().contains("args are empty"), "{err}");
    }

    #[test]
    fn rlimits_above_the_hard_limit_are_refused() {
        let err = ProcessSpec::builder(rootfs(), ["true"]).rlimit(RlimitResource::Nofile, 1, u64::MAX - 1).build();
        assert!(err.unwrap_err().to_string().contains("only CAP_SYS_RESOURCE may raise"));
        let ok = ProcessSpec::builder(rootfs(), ["true"]).rlimit(RlimitResource::Nofile, 64, 128).build();
        assert_eq!(ok.unwrap().rlimits.len(), 1);
    }

    #[test]
    fn binds_become_containerd_mounts() {
        let spec = ProcessSpec::builder(rootfs(), ["true"]).bind("/src", "/dst", true).build().unwrap();
        assert_eq!(spec.mounts[0].mount.options, ["rbind", "ro"]);
        assert_eq!(spec.mounts[0].target, Path::new("/dst"));
    }
}
