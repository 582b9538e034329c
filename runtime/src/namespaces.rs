//! The namespaces a container gets, its hostname and its loopback interface.

use nix::sched::{CloneFlags, unshare};

use crate::error::{Context, Result};
use crate::spec::Network;

/// Unshares mount, PID, IPC and UTS namespaces, and the network one for [`Network::None`]. The caller's
/// children are born in the new PID namespace; the caller itself stays outside it.
pub(crate) fn unshare_namespaces(network: Network) -> Result<()> {
    let mut flags =
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    if network == Network::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).context(|| format!("creating the container's namespaces ({flags:?})"))
}

/// Sets the hostname of the (new) UTS namespace.
pub(crate) fn set_hostname(hostname: &str) -> Result<()> {
    nix::unistd::sethostname(hostname).context(|| format!("setting the hostname to {hostname:?}"))
}

/// Brings `lo` up in a fresh network namespace, where it starts down.
pub(crate) fn bring_up_loopback() -> Result<()> {
    let what = || "bringing up the loopback interface".to_owned();
    // SAFETY: plain socket(2); the result is checked and owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context(what);
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write only the ifreq passed, which outlives the calls.
    unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(std::io::Error::last_os_error()).context(what);
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(std::io::Error::last_os_error()).context(what);
        }
    }
    Ok(())
}
