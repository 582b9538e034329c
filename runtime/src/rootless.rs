//! Rootless containers: a user namespace where uid and gid 0 are the caller. With a range in `/etc/subuid` and
//! `/etc/subgid` and the setuid helpers `newuidmap`/`newgidmap` (Debian package `uidmap`), ids 1.. map to that
//! range so images' other users work; without them only root exists inside, and supplementary groups cannot be
//! set (the kernel requires `setgroups` to be denied for such a namespace).

use std::path::Path;

use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, User, fork};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// One line of `uid_map` or `gid_map`: `size` ids from `container` on map to `host` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// How the init maps ids in its user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserNamespacePlan {
    pub uid_maps: Vec<IdMap>,
    pub gid_maps: Vec<IdMap>,
    /// True when `newuidmap`/`newgidmap` write the maps (subordinate ranges); false for the single-id map the
    /// process may write itself.
    pub via_helpers: bool,
}

impl UserNamespacePlan {
    /// Plans the namespace for the calling (non-root) user from `/etc/subuid` and `/etc/subgid`.
    pub(crate) fn for_current_user() -> Self {
        let (uid, gid) = (Uid::current(), Gid::current());
        let name = User::from_uid(uid).ok().flatten().map(|u| u.name).unwrap_or_default();
        let own = |id: u32| IdMap { container: 0, host: id, size: 1 };
        let subordinate = |file: &str| {
            let ranges = std::fs::read_to_string(file).unwrap_or_default();
            subordinate_range(&ranges, &name, uid.as_raw())
        };
        let helpers = ["newuidmap", "newgidmap"].iter().all(|tool| on_path(tool));
        match (subordinate("/etc/subuid"), subordinate("/etc/subgid")) {
            (Some((uid_start, uid_count)), Some((gid_start, gid_count))) if helpers => Self {
                uid_maps: vec![own(uid.as_raw()), IdMap { container: 1, host: uid_start, size: uid_count }],
                gid_maps: vec![own(gid.as_raw()), IdMap { container: 1, host: gid_start, size: gid_count }],
                via_helpers: true,
            },
            _ => Self { uid_maps: vec![own(uid.as_raw())], gid_maps: vec![own(gid.as_raw())], via_helpers: false },
        }
    }

    /// Whether `setgroups` works in the namespace.
    pub(crate) fn allows_supplementary_groups(&self) -> bool {
        self.via_helpers
    }

    /// Moves the calling, single-threaded process into a new user namespace with these maps, as its root.
    pub(crate) fn enter(&self) -> Result<()> {
        if !self.via_helpers {
            unshare_user()?;
            let me = Path::new("/proc/self");
            write_proc(&me.join("setgroups"), "deny")?;
            write_proc(&me.join("uid_map"), &map_lines(&self.uid_maps))?;
            return write_proc(&me.join("gid_map"), &map_lines(&self.gid_maps));
        }
        // newuidmap must run outside the new namespace, on our pid: a child waits for us to unshare.
        let (ready_read, ready_write) = nix::unistd::pipe().context(|| "creating the id-map pipe".to_owned())?;
        let target = nix::unistd::getpid();
        // SAFETY: the init is single-threaded here, so the child may do anything before it exits.
        match unsafe { fork() }.context(|| "forking the id-map helper".to_owned())? {
            ForkResult::Child => {
                drop(ready_write);
                let mut byte = [0u8];
                let ok = nix::unistd::read(&ready_read, &mut byte) == Ok(1)
                    && run_helper("newuidmap", target, &self.uid_maps)
                    && run_helper("newgidmap", target, &self.gid_maps);
                // SAFETY: _exit skips the parent's atexit handlers and buffers, which belong to the parent.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            ForkResult::Parent { child } => {
                drop(ready_read);
                let entered = unshare_user();
                nix::unistd::write(&ready_write, &[u8::from(entered.is_ok())])
                    .context(|| "waking the id-map helper".to_owned())?;
                let status = waitpid(child, None).context(|| "waiting for the id-map helper".to_owned())?;
                entered?;
                match status {
                    WaitStatus::Exited(_, 0) => Ok(()),
                    other => Err(Error::Rootless(format!(
                        "newuidmap/newgidmap failed ({other:?}) mapping {:?} and {:?}; check /etc/subuid and /etc/subgid",
                        self.uid_maps, self.gid_maps
                    ))),
                }
            }
        }
    }
}

fn unshare_user() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| {
        Error::Rootless(format!(
            "creating a user namespace failed ({e}); unprivileged user namespaces may be disabled \
             (sysctl user.max_user_namespaces or kernel.apparmor_restrict_unprivileged_userns)"
        ))
    })
}

fn run_helper(tool: &str, pid: Pid, maps: &[IdMap]) -> bool {
    let args = maps.iter().flat_map(|m| [m.container, m.host, m.size]).map(|id| id.to_string());
    std::process::Command::new(tool).arg(pid.to_string()).args(args).status().is_ok_and(|s| s.success())
}

fn map_lines(maps: &[IdMap]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container, m.host, m.size)).collect()
}

fn write_proc(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).context(|| format!("writing {content:?} to {}", path.display()))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// The first `start:count` range of `/etc/subuid`-style `ranges` for the user, by name or by id.
fn subordinate_range(ranges: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    ranges.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let owner = fields.next()?;
        if owner != name && owner.parse() != Ok(id) {
            return None;
        }
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_match_by_name_or_id() {
        let ranges = "alice:100000:65536\n1001:165536:65536\n";
        assert_eq!(subordinate_range(ranges, "alice", 1000), Some((100000, 65536)));
        assert_eq!(subordinate_range(ranges, "bob", 1001), Some((165536, 65536)));
        assert_eq!(subordinate_range(ranges, "carol", 1002), None);
    }

    #[test]
    fn maps_render_as_proc_lines() {
        let maps = [IdMap { container: 0, host: 1000, size: 1 }, IdMap { container: 1, host: 100000, size: 65536 }];
        assert_eq!(map_lines(&maps), "0 1000 1\n1 100000 65536\n");
    }
}
