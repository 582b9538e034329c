//! Docker's default capability set: everything else is dropped from the bounding set, and the process keeps
//! only these as root (a non-root user loses them on `setuid`, as with Docker). A privileged process keeps
//! every capability instead.

use crate::error::{Context, Result};

/// The capabilities Docker grants by default, by number (`linux/capability.h`).
const DOCKER_DEFAULT: [u32; 14] = [
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    13, // CAP_NET_RAW
    18, // CAP_SYS_CHROOT
    27, // CAP_MKNOD
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Limits the process to Docker's default set, or with `privileged` to every capability it has (its bounding
/// set: the caller may itself run with fewer than the kernel knows, and capset cannot add any):
/// bounding, effective and permitted become that set; inheritable and ambient become empty (inheritable caps
/// leaked into exec'd programs: CVE-2022-24769).
pub(crate) fn restrict(privileged: bool) -> Result<()> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    let granted: Vec<u32> = if privileged {
        // SAFETY: PR_CAPBSET_READ takes a capability number and touches no memory.
        (0..=last)
            .filter(|&cap| unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) } == 1)
            .collect()
    } else {
        DOCKER_DEFAULT.to_vec()
    };
    for cap in (0..=last).filter(|cap| !granted.contains(cap)) {
        // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error())
                .context(|| format!("dropping capability {cap} from the bounding set"));
        }
    }
    // Kernels before 4.3 have no ambient set; where this fails there is nothing to clear.
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL touches no memory.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    let mut data = [CapData::default(); 2];
    for cap in granted {
        let word = &mut data[(cap / 32) as usize];
        word.effective |= 1 << (cap % 32);
        word.permitted |= 1 << (cap % 32);
    }
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: capset reads the header and two data words, both valid for the call.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context(|| "setting the container's capabilities".to_owned());
    }
    Ok(())
}

/// Sets `no_new_privs`: setuid binaries and file capabilities grant nothing after exec.
pub(crate) fn set_no_new_privileges() -> Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context(|| "setting no_new_privs".to_owned());
    }
    Ok(())
}
