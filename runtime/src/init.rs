//! The container's init: strata re-executed (`strata __init`, or the `strata-init` binary) so that namespace
//! and mount setup run in a fresh single-threaded process instead of after a fork of the multi-threaded caller.
//!
//! The init reads its config from fd 3, enters a user namespace when rootless, unshares the other namespaces
//! and forks the container process, which is PID 1 of the new PID namespace: it builds the rootfs, switches
//! user, drops capabilities and execs the command, which therefore runs as PID 1 (as with BuildKit and
//! `docker run` without `--init`; zombies the command does not reap vanish with the namespace when it exits).
//! The init stays outside as a small supervisor: it forwards signals to the command, kills it when the
//! caller's end of fd 3 closes (caller gone or cancelled), and reports the exit code on fd 4.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, pipe2};

use crate::capabilities::{restrict, set_no_new_privileges};
use crate::error::{Context, Error, Result};
use crate::handoff::{CONTROL_FD, InitConfig, REPORT_FD, Report, encode_report, receive_config};
use crate::namespaces::{bring_up_loopback, set_hostname, unshare_namespaces};
use crate::rootfs::enter_rootfs;
use crate::spec::{DEFAULT_PATH, Network, ProcessSpec};
use crate::user::{ResolvedUser, resolve};

/// The argv\[1\] that makes a strata binary act as a container's init.
pub const INIT_ARG: &str = "__init";

/// Signals the init passes on to the command rather than acting on them itself.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Runs the container init and exits when argv\[1\] is [`INIT_ARG`]; returns at once otherwise. Call it first
/// in `main`, before any thread (tokio, tracing) starts.
pub fn run_init_if_requested() {
    if std::env::args_os().nth(1).as_deref() != Some(OsStr::new(INIT_ARG)) {
        return;
    }
    // SAFETY: the caller set up fds 3 and 4 as the control and report pipes for us; nothing else owns them.
    let (control, mut report_pipe) = unsafe { (OwnedFd::from_raw_fd(CONTROL_FD), File::from_raw_fd(REPORT_FD)) };
    let report = supervise_container(control, &report_pipe).unwrap_or_else(|e| Report::Failed(e.to_string()));
    // The caller may be gone (that is how we got here after a kill); there is no one else to tell.
    let _ = report_pipe.write_all(&encode_report(&report));
    // Close every fd now rather than at exit: an exiting process's files are closed only after its namespaces
    // are torn down, which takes RCU grace periods the caller would wait for before seeing EOF.
    drop(report_pipe);
    let _ = close_fds_from(0);
    std::process::exit(match report {
        Report::Exited(code) => code,
        Report::Failed(_) => 1,
    })
}

fn supervise_container(control: OwnedFd, report_pipe: &File) -> Result<Report> {
    // Whatever the caller's process leaked without close-on-exec (a jobserver pipe, say) must not reach the
    // container.
    close_fds_from(REPORT_FD + 1)?;
    for fd in [control.as_fd(), report_pipe.as_fd()] {
        // The container process must not inherit them: an open report pipe would keep the caller waiting.
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .context(|| "setting close-on-exec on fds 3 and 4".to_owned())?;
    }
    let config = receive_config(&mut File::from(control.try_clone().context(|| "duplicating fd 3".to_owned())?))?;
    if let Some(plan) = &config.user_namespace {
        plan.enter()?;
    }
    unshare_namespaces(config.spec.network)?;
    // Blocked before the fork so that no signal slips between it and the loop below. An ignored signal is
    // dropped before it can be queued for the signalfd, and a caller started in the background of a
    // non-interactive shell ignores SIGINT: so reset them to the default, which blocking keeps from acting.
    let mut watched = SigSet::empty();
    watched.add(Signal::SIGCHLD);
    FORWARDED.iter().for_each(|&s| watched.add(s));
    reset_dispositions(watched.iter().map(|s| s as libc::c_int))?;
    watched.thread_block().context(|| "blocking signals in the init".to_owned())?;
    let signals = SignalFd::with_flags(&watched, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context(|| "creating the init's signalfd".to_owned())?;
    let (error_read, error_write) = pipe2(OFlag::O_CLOEXEC).context(|| "creating the exec error pipe".to_owned())?;
    // SAFETY: the init is single-threaded, so the child may run any code.
    match unsafe { fork() }.context(|| "forking the container process".to_owned())? {
        ForkResult::Child => {
            drop(error_read);
            let error = start_command(&config);
            let _ = File::from(error_write).write_all(error.to_string().as_bytes());
            // SAFETY: _exit skips the atexit handlers and buffers, which belong to the init.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(error_write);
            let mut setup_error = String::new();
            // EOF when the command's exec closes the pipe; a message when setup failed.
            File::from(error_read)
                .read_to_string(&mut setup_error)
                .context(|| "reading the container process's setup result".to_owned())?;
            if !setup_error.is_empty() {
                let _ = waitpid(child, None);
                return Ok(Report::Failed(setup_error));
            }
            wait_for_command(child, &signals, control)
        }
    }
}

/// Closes every fd from `first` on.
fn close_fds_from(first: RawFd) -> Result<()> {
    // SAFETY: close_range only closes descriptors; the callers own none of those at or above `first`.
    if unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context(|| format!("closing the init's fds from {first} on"));
    }
    Ok(())
}

/// Waits for the command to exit, forwarding signals, and kills it when the caller closes the control pipe.
fn wait_for_command(command: Pid, signals: &SignalFd, control: OwnedFd) -> Result<Report> {
    let mut control = Some(control);
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(control) = &control {
            fds.push(PollFd::new(control.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.context(|| "waiting for the container".to_owned())?,
        };
        let caller_gone = fds.get(1).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
        drop(fds);
        if caller_gone {
            // The caller only ever closes its end; readable means EOF.
            control = None;
            let _ = kill(command, Signal::SIGKILL);
        }
        while let Some(info) = signals.read_signal().context(|| "reading the init's signalfd".to_owned())? {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else { continue };
            if signal != Signal::SIGCHLD {
                let _ = kill(command, signal);
                continue;
            }
            match waitpid(command, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(Report::Exited(code)),
                Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Report::Exited(128 + signal as i32)),
                _ => {}
            }
        }
    }
}

/// Runs in the container process (PID 1 of the new namespace): builds the container and execs the command.
/// Returns only on failure.
fn start_command(config: &InitConfig) -> Error {
    match prepare_and_exec(config) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

fn prepare_and_exec(config: &InitConfig) -> Result<std::convert::Infallible> {
    let spec = &config.spec;
    // Dies with the init, which dies with the caller; the init is single-threaded, so no thread exit fires it.
    set_parent_death_signal()?;
    nix::unistd::setsid().context(|| "starting a new session".to_owned())?;
    set_hostname(&spec.hostname)?;
    if spec.network == Network::None {
        bring_up_loopback()?;
    }
    enter_rootfs(spec, &config.state_dir)?;
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let user = resolve(&spec.user, &read("/etc/passwd"), &read("/etc/group"))?;
    enter_working_directory(&spec.cwd)?;
    for limit in &spec.rlimits {
        nix::sys::resource::setrlimit(limit.resource.to_nix(), limit.soft, limit.hard)
            .context(|| format!("setting {:?} to {}:{}", limit.resource, limit.soft, limit.hard))?;
    }
    restrict(spec.privileged)?;
    let groups_allowed = config.user_namespace.as_ref().is_none_or(|plan| plan.allows_supplementary_groups());
    switch_user(&spec.user, &user, groups_allowed)?;
    set_no_new_privileges()?;
    // Changing credentials cleared it; set it again for the command itself.
    set_parent_death_signal()?;
    exec_command(spec, &user)
}

fn set_parent_death_signal() -> Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context(|| "setting the parent-death signal".to_owned());
    }
    Ok(())
}

/// Creates the working directory when missing, as Docker does for WORKDIR, and enters it.
fn enter_working_directory(cwd: &Path) -> Result<()> {
    std::fs::create_dir_all(cwd).context(|| format!("creating the working directory {}", cwd.display()))?;
    nix::unistd::chdir(cwd).context(|| format!("entering the working directory {}", cwd.display()))
}

fn switch_user(spec: &str, user: &ResolvedUser, groups_allowed: bool) -> Result<()> {
    let who = || format!("user {spec:?} (uid {}, gid {})", user.uid, user.gid);
    let unmapped = |e: nix::Error| match e {
        nix::errno::Errno::EINVAL => Error::Rootless(format!(
            "switching to {}: the id is not mapped in this user namespace; give the calling user a range in \
             /etc/subuid and /etc/subgid and install newuidmap/newgidmap (Debian package uidmap)",
            who()
        )),
        source => Error::Sys { context: format!("switching to {}", who()), source },
    };
    if groups_allowed {
        let groups: Vec<Gid> = user.groups.iter().copied().map(Gid::from_raw).collect();
        nix::unistd::setgroups(&groups).map_err(unmapped)?;
    }
    let (uid, gid) = (Uid::from_raw(user.uid), Gid::from_raw(user.gid));
    nix::unistd::setresgid(gid, gid, gid).map_err(unmapped)?;
    nix::unistd::setresuid(uid, uid, uid).map_err(unmapped)
}

fn exec_command(spec: &ProcessSpec, user: &ResolvedUser) -> Result<std::convert::Infallible> {
    let mut env = spec.env.clone();
    if spec.env_var("HOME").is_none() {
        env.push(format!("HOME={}", user.home));
    }
    let program = find_executable(&spec.args[0], spec.env_var("PATH").unwrap_or(DEFAULT_PATH))?;
    let to_c = |s: &str| CString::new(s).map_err(|_| Error::InvalidSpec(format!("{s:?} contains a NUL byte")));
    let args = spec.args.iter().map(|a| to_c(a)).collect::<Result<Vec<_>>>()?;
    let env = env.iter().map(|e| to_c(e)).collect::<Result<Vec<_>>>()?;
    // The Rust runtime ignores SIGPIPE, the caller may have ignored others, and the init blocked some: the
    // command starts with every signal at its default and none blocked, as under Docker.
    reset_dispositions((1..=libc::SIGRTMAX()).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP))?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .context(|| "unblocking signals for the command".to_owned())?;
    let error = nix::unistd::execve(&program, &args, &env).unwrap_err();
    Err(Error::Sys { context: format!("executing {:?} ({})", spec.args[0], program.to_string_lossy()), source: error })
}

/// Sets `signals` (numbers, real-time ones included) to their default action. Through the raw system call,
/// because glibc refuses to touch the two real-time signals it reserves, which callers may have ignored.
fn reset_dispositions(signals: impl Iterator<Item = libc::c_int>) -> Result<()> {
    /// The kernel's `struct sigaction` for x86-64 and arm64: handler, flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    for sig in signals {
        // SAFETY: rt_sigaction reads one sigaction of the size passed; SIG_DFL needs no handler or restorer.
        let result =
            unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, &default, std::ptr::null_mut::<KernelSigaction>(), 8) };
        if result != 0 {
            return Err(std::io::Error::last_os_error())
                .context(|| format!("restoring the default action of signal {sig}"));
        }
    }
    Ok(())
}

/// `program` itself when it has a slash, else the first executable file of that name in `path`.
fn find_executable(program: &str, path: &str) -> Result<CString> {
    let found = if program.contains('/') {
        Some(program.to_owned())
    } else {
        path.split(':').map(|dir| format!("{dir}/{program}")).find(|candidate| {
            Path::new(candidate).is_file()
                && nix::unistd::access(candidate.as_str(), nix::unistd::AccessFlags::X_OK).is_ok()
        })
    };
    let found = found.ok_or_else(|| {
        Error::InvalidSpec(format!("the command {program:?} is not an executable in the container's $PATH ({path})"))
    })?;
    CString::new(found).map_err(|_| Error::InvalidSpec(format!("{program:?} contains a NUL byte")))
}
