//! Ctrl-C and SIGTERM during `strata build`: the first one while steps run cancels the solve (the solver's
//! drop kills running containers and removes their unfinished snapshots, so nothing is recorded) and exits
//! with 128 + the signal; one outside the solve exits at once with that code, and a second one during the
//! cleanup ends the process as the default action does.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::cmd::CliError;

/// Watches for SIGINT and SIGTERM from its creation on.
pub struct Interrupts {
    solving: Arc<AtomicBool>,
    received: watch::Receiver<Option<i32>>,
}

/// The solve was stopped by this signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub i32);

impl Interrupted {
    /// `SIGINT` or `SIGTERM`, for the message.
    pub fn name(self) -> &'static str {
        if self.0 == libc::SIGINT { "SIGINT" } else { "SIGTERM" }
    }

    /// The shell's exit code for death by this signal: 130 for SIGINT, 143 for SIGTERM.
    pub fn exit_code(self) -> i32 {
        128 + self.0
    }
}

impl Interrupts {
    /// Starts watching on `runtime`; the handlers are installed before this returns.
    pub fn watch(runtime: &tokio::runtime::Runtime) -> Result<Self, CliError> {
        let _entered = runtime.enter();
        let listen = |kind: SignalKind| signal(kind).map_err(|e| CliError(format!("handling signals: {e}")));
        let (mut interrupt, mut terminate) = (listen(SignalKind::interrupt())?, listen(SignalKind::terminate())?);
        let solving = Arc::new(AtomicBool::new(false));
        let (sender, received) = watch::channel(None);
        let during_solve = solving.clone();
        runtime.spawn(async move {
            loop {
                let signal = tokio::select! {
                    _ = interrupt.recv() => libc::SIGINT,
                    _ = terminate.recv() => libc::SIGTERM,
                };
                // A signal during the solve cancels it; one outside the solve ends the process at once.
                if during_solve.swap(false, Ordering::SeqCst) {
                    let _ = sender.send(Some(signal));
                    // The runtime that listens here shuts down during the cleanup; a second signal must still
                    // end the process then.
                    restore_default_actions();
                } else {
                    std::process::exit(Interrupted(signal).exit_code());
                }
            }
        });
        Ok(Self { solving, received })
    }

    /// Runs `work` until it ends or a signal comes; on a signal `work` is dropped before this returns.
    pub async fn during<F: Future>(&self, work: F) -> Result<F::Output, Interrupted> {
        let mut received = self.received.clone();
        self.solving.store(true, Ordering::SeqCst);
        let result = tokio::select! {
            output = work => Ok(output),
            Ok(signal) = received.wait_for(Option::is_some) => Err(Interrupted((*signal).unwrap_or(libc::SIGINT))),
        };
        self.solving.store(false, Ordering::SeqCst);
        result
    }
}

/// Gives SIGINT and SIGTERM their default action (ending the process) back.
fn restore_default_actions() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: SIG_DFL installs no handler; this only replaces tokio's, which nothing waits on any more.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
}

/// Ends the process after a canceled solve. Shutting `runtime` down first drops the solve's tasks and waits for
/// them, so running containers are dead and unfinished snapshots removed before the exit.
pub fn exit_canceled(runtime: tokio::runtime::Runtime, interrupted: Interrupted) -> ! {
    drop(runtime);
    eprintln!("error: build canceled by {}", interrupted.name());
    std::process::exit(interrupted.exit_code())
}
