//! `--progress`: how `strata build` reports steps on standard error, one module per mode over shared [`Steps`]
//! state. Every mode but `quiet` closes with a summary line (`rawjson` keeps its stream pure JSON lines).

mod plain;
mod quiet;
mod rawjson;
mod state;
mod tty;

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use strata_llb::Graph;
use strata_solver::Progress;

use super::Progress as Mode;
use crate::cmd::CliError;
use state::Steps;

/// How the build ended, for the closing output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End<'a> {
    /// Built, with the image's manifest digest when an image was assembled (not for filesystem-only outputs).
    Built(Option<&'a str>),
    /// A step failed (the error itself is printed by the caller).
    Failed,
    /// Ctrl-C or SIGTERM stopped it.
    Canceled,
}

/// A progress sink that also closes the build's output.
pub trait BuildProgress: Progress {
    /// Prints the closing output: the summary, the failed steps' logs, or the canceled steps.
    fn end(&self, end: End<'_>);
}

/// Where a mode writes: standard error, or a buffer in tests.
type Out = Mutex<Box<dyn Write + Send>>;

fn stderr() -> Out {
    Mutex::new(Box::new(std::io::stderr()))
}

/// Writes `text` in one go, so lines of parallel steps never mix.
fn write(out: &Out, text: &str) {
    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The sink for `mode` (`auto`: tty when standard error is a terminal, else plain); `secrets` are never
/// printed. `tty` on something else than a terminal is an error, as in buildx.
pub fn for_mode<'a>(
    mode: Mode,
    graph: &Graph,
    secrets: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Arc<dyn BuildProgress>, CliError> {
    let steps = Steps::new(secrets);
    let terminal = std::io::stderr().is_terminal();
    Ok(match mode {
        Mode::Tty if !terminal => return Err(CliError("--progress=tty: standard error is not a terminal".into())),
        Mode::Tty | Mode::Auto if terminal => Arc::new(tty::Tty::new(steps)),
        Mode::Rawjson => Arc::new(rawjson::RawJson::new(steps, graph, stderr())),
        Mode::Quiet => Arc::new(quiet::Quiet),
        Mode::Plain | Mode::Auto | Mode::Tty => Arc::new(plain::Plain::new(steps, stderr())),
    })
}

#[cfg(test)]
mod test_out {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    pub struct Buffer(pub Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        /// What was written so far.
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        /// An `Out` writing here.
        pub fn out(&self) -> super::Out {
            Mutex::new(Box::new(self.clone()))
        }
    }

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
