//! The caller's side: starting the init, streaming the command's output, signals, kill, timeout, exit code.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::Signal;
use nix::unistd::pipe2;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdout};

use crate::error::{Context, Error, Result};
use crate::handoff::{CONTROL_FD, InitConfig, REPORT_FD, Report, decode_report, send_config};
use crate::init::INIT_ARG;
use crate::rootfs::write_etc_files;
use crate::rootless::UserNamespacePlan;
use crate::spec::ProcessSpec;

/// Starts containers by running an init program: strata itself by default.
#[derive(Debug, Clone)]
pub struct Runtime {
    init_program: PathBuf,
}

/// A finished command's exit code and everything it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The exit code; 128 + n when signal n ended it.
    pub exit_code: i32,
    /// All of its standard output.
    pub stdout: Vec<u8>,
    /// All of its standard error.
    pub stderr: Vec<u8>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A runtime whose init is this very executable (`/proc/self/exe __init`); its `main` must call
    /// [`run_init_if_requested`](crate::run_init_if_requested) first.
    pub fn new() -> Self {
        Self::with_init_program("/proc/self/exe")
    }

    /// A runtime whose init is `program` (e.g. the `strata-init` binary), run as `program __init`.
    pub fn with_init_program(program: impl Into<PathBuf>) -> Self {
        Self { init_program: program.into() }
    }

    /// Starts the container; must be called within a tokio runtime. Dropping the handle kills the container.
    pub fn spawn(&self, spec: &ProcessSpec) -> Result<Container> {
        let state_dir = tempfile::Builder::new()
            .prefix("strata-run-")
            .tempdir()
            .context(|| "creating the container's state directory".to_owned())?;
        write_etc_files(state_dir.path(), spec)?;
        let user_namespace = (!nix::unistd::geteuid().is_root()).then(UserNamespacePlan::for_current_user);
        let config = InitConfig { spec: spec.clone(), state_dir: state_dir.path().to_owned(), user_namespace };
        let (control_read, control_write) = cloexec_pipe("control")?;
        let (report_read, report_write) = cloexec_pipe("report")?;
        let control_child = above_init_fds(control_read)?;
        let report_child = above_init_fds(report_write)?;
        let (control_fd, report_fd) = (control_child.as_raw_fd(), report_child.as_raw_fd());
        let mut command = tokio::process::Command::new(&self.init_program);
        command.arg(INIT_ARG).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        // SAFETY: dup2 is async-signal-safe and allocates nothing, so it may run between fork and exec of a
        // multi-threaded process. Both sources are above fd 4, so neither dup2 clobbers the other's source, and
        // dup2 clears close-on-exec on the copies.
        unsafe {
            command.pre_exec(move || {
                for (from, to) in [(control_fd, CONTROL_FD), (report_fd, REPORT_FD)] {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .context(|| format!("starting the container init {} {INIT_ARG}", self.init_program.display()))?;
        drop((control_child, report_child));
        let mut control = File::from(control_write);
        send_config(&mut control, &config)?;
        Ok(Container { child, control: Some(control), report: Some(File::from(report_read)), _state_dir: state_dir })
    }

    /// Runs the container to the end and collects its output; blocking, for tests and simple callers. With a
    /// timeout, the whole container is killed when it expires.
    pub fn run_to_completion(&self, spec: &ProcessSpec, timeout: Option<Duration>) -> Result<Completed> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context(|| "starting a tokio runtime to run the container".to_owned())?;
        runtime.block_on(async { self.spawn(spec)?.output(timeout).await })
    }
}

fn cloexec_pipe(name: &str) -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).context(|| format!("creating the {name} pipe for the container init"))
}

/// A close-on-exec copy of `fd` numbered above the init's fds 3 and 4.
fn above_init_fds(fd: OwnedFd) -> Result<OwnedFd> {
    let copy = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(REPORT_FD + 1)).context(|| "duplicating a pipe fd".to_owned())?;
    // SAFETY: F_DUPFD_CLOEXEC returned a fresh descriptor that we now own.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(copy) })
}

/// A running container. Dropping it kills the container.
#[derive(Debug)]
pub struct Container {
    child: Child,
    /// Closing it tells the init to kill the container.
    control: Option<File>,
    /// Taken by the first `wait`.
    report: Option<File>,
    _state_dir: tempfile::TempDir,
}

impl Container {
    /// Takes the command's standard output, to read as it comes.
    pub fn stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Takes the command's standard error, to read as it comes.
    pub fn stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Sends `signal` to the command through the init (PID 1 gets only signals it handles, as in Docker);
    /// SIGKILL kills the whole container, and SIGSTOP stops only the init.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let Some(pid) = self.child.id() else { return Ok(()) };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .context(|| format!("forwarding {signal} to the container init (pid {pid})"))
    }

    /// Kills every process of the container: the command is PID 1, and its namespace dies with it.
    pub fn kill(&mut self) -> Result<()> {
        self.control = None;
        // Also kill the init, in case it is still setting up and not watching the control pipe yet; the
        // command dies with it through its parent-death signal.
        match self.child.start_kill() {
            Err(e) if e.kind() != std::io::ErrorKind::InvalidInput => {
                Err(e).context(|| "killing the container init".to_owned())
            }
            _ => Ok(()),
        }
    }

    /// Waits for the command to exit and returns its exit code (128 + n for signal n). Returns as soon as the
    /// init reports, when every container process is gone but the kernel may still be tearing down the
    /// namespaces (RCU grace periods that would otherwise double the time of a short command; the init closes
    /// its fds before exiting because an exiting process's files are released only after that teardown).
    pub async fn wait(&mut self) -> Result<i32> {
        let report = match self.report.take() {
            Some(mut pipe) => tokio::task::spawn_blocking(move || {
                let mut report = Vec::new();
                pipe.read_to_end(&mut report).map(|_| report)
            })
            .await
            .map_err(|e| Error::Io { context: "reading the container init's report".to_owned(), source: e.into() })?
            .context(|| "reading the container init's report".to_owned())?,
            None => Vec::new(),
        };
        match decode_report(&report)? {
            Some(Report::Exited(code)) => Ok(code),
            Some(Report::Failed(message)) => Err(Error::Setup(message)),
            None => {
                // Killed before it could report: its own exit status is all there is.
                let status = self.child.wait().await.context(|| "waiting for the container init".to_owned())?;
                use std::os::unix::process::ExitStatusExt;
                Ok(status.code().or(status.signal().map(|n| 128 + n)).unwrap_or(128))
            }
        }
    }

    /// Waits for the end, collecting all output; with a timeout, kills the container when it expires.
    pub async fn output(mut self, timeout: Option<Duration>) -> Result<Completed> {
        let (mut stdout, mut stderr) = (self.stdout(), self.stderr());
        let run = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let read_out = async {
                if let Some(s) = &mut stdout {
                    s.read_to_end(&mut out).await?;
                }
                Ok::<_, std::io::Error>(())
            };
            let read_err = async {
                if let Some(s) = &mut stderr {
                    s.read_to_end(&mut err).await?;
                }
                Ok::<_, std::io::Error>(())
            };
            let (read_out, read_err, exit_code) = tokio::join!(read_out, read_err, self.wait());
            read_out.and(read_err).context(|| "reading the command's output".to_owned())?;
            Ok(Completed { exit_code: exit_code?, stdout: out, stderr: err })
        };
        let Some(limit) = timeout else { return run.await };
        match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => {
                self.kill()?;
                let _ = self.child.wait().await;
                Err(Error::TimedOut(limit))
            }
        }
    }
}
