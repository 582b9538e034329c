//! `--progress=plain`: BuildKit's `#N` lines on standard error, one number per step in the order steps start.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata_llb::NodeId;
use strata_solver::Progress;

/// Prints plain progress; `quiet` prints nothing but errors.
pub struct PlainProgress {
    quiet: bool,
    started: Instant,
    numbers: Mutex<HashMap<NodeId, usize>>,
}

impl PlainProgress {
    /// A printer; with `quiet`, only errors are printed.
    pub fn new(quiet: bool) -> Self {
        Self { quiet, started: Instant::now(), numbers: Mutex::new(HashMap::new()) }
    }

    /// The step's `#N`, numbering it on first sight.
    fn number(&self, node: NodeId) -> usize {
        let mut numbers = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
        let next = numbers.len() + 1;
        *numbers.entry(node).or_insert(next)
    }

    fn line(&self, node: NodeId, text: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "#{} {text}", self.number(node));
        }
    }
}

impl Progress for PlainProgress {
    fn started(&self, node: NodeId, description: &str) {
        self.line(node, description);
    }

    fn output(&self, node: NodeId, line: &str) {
        self.line(node, &format!("{:.3} {line}", self.started.elapsed().as_secs_f64()));
    }

    fn cached(&self, node: NodeId, description: &str) {
        self.line(node, description);
        self.line(node, "CACHED");
    }

    fn finished(&self, node: NodeId, elapsed: Duration) {
        self.line(node, &format!("DONE {:.1}s", elapsed.as_secs_f64()));
    }

    fn failed(&self, node: NodeId, error: &str) {
        let _ = writeln!(std::io::stderr().lock(), "#{} ERROR: {error}", self.number(node));
    }
}
