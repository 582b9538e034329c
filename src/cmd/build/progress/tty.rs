//! `--progress=tty`: a live view redrawn in place, in the shape of BuildKit's console display: a
//! `[+] Building 3.2s (4/6)` header, a ` => name  1.2s` line per step with a running timer, `CACHED`/`ERROR`
//! marks, and the last lines of each running step's output under it (` => => # line`). When the build ends the
//! view stays as its final rendering, followed by the summary.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};
use strata_llb::NodeId;
use strata_solver::{Progress, Stream};

use super::state::{State, Step, Steps};
use super::{BuildProgress, End};

/// Output lines shown under a running step.
const SHOWN: usize = 6;
/// How often timers redraw.
const TICK: Duration = Duration::from_millis(100);

/// The live view.
pub struct Tty {
    steps: Steps,
    multi: MultiProgress,
    header: ProgressBar,
    /// Each shown step's line, and the bar under it holding its output once it printed some.
    bars: Mutex<HashMap<NodeId, (ProgressBar, Option<ProgressBar>)>>,
}

/// `{secs}`: the bar's elapsed time as BuildKit shows it, `3.2s`.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("the templates are valid").with_key(
        "secs",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
        },
    )
}

impl Tty {
    /// A view drawing on standard error.
    pub(super) fn new(steps: Steps) -> Self {
        let multi = MultiProgress::new();
        let header = multi.add(ProgressBar::new_spinner().with_style(style("[+] Building {secs} {msg}")));
        header.enable_steady_tick(TICK);
        Self { steps, multi, header, bars: Mutex::new(HashMap::new()) }
    }

    /// Redraws `step`: running with its timer and output, or complete with its mark and time.
    fn show(&self, node: NodeId, step: &Step) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let (line, log) = bars.entry(node).or_insert_with(|| {
            let line = self.multi.add(ProgressBar::new_spinner().with_style(style(" => {wide_msg} {secs}")));
            line.enable_steady_tick(TICK);
            (line, None)
        });
        // BuildKit's colours: finished steps blue, failed ones red, canceled ones yellow.
        let (mark, colour) = match &step.state {
            State::Running => {
                line.set_message(step.name.clone());
                if !step.tail.is_empty() {
                    let log = log.get_or_insert_with(|| {
                        self.multi.insert_after(line, ProgressBar::new_spinner().with_style(style("{msg:.dim}")))
                    });
                    let width = terminal_width().saturating_sub(10).max(20);
                    let shown = step.tail.iter().skip(step.tail.len().saturating_sub(SHOWN));
                    let lines: Vec<String> = shown.map(|l| format!(" => => # {}", truncate(l, width))).collect();
                    log.set_message(lines.join("\n"));
                }
                return self.count(&bars);
            }
            State::Done(_) => ("", "blue"),
            State::Cached => ("CACHED ", "blue"),
            State::Failed(_) => ("ERROR ", "red"),
            State::Canceled => ("CANCELED ", "yellow"),
        };
        let time = match step.state {
            State::Done(elapsed) => elapsed,
            State::Cached => Duration::ZERO,
            _ => step.started.elapsed(),
        };
        line.set_style(style(&format!(" => {{wide_msg:.{colour}}} {{prefix:.{colour}}}")));
        line.set_prefix(format!("{:.1}s", time.as_secs_f64()));
        line.finish_with_message(format!("{mark}{}", step.name));
        if let Some(log) = log.take() {
            log.finish_and_clear();
            self.multi.remove(&log);
        }
        self.count(&bars);
    }

    /// The header's `(complete/seen)` count.
    fn count(&self, bars: &HashMap<NodeId, (ProgressBar, Option<ProgressBar>)>) {
        let done = bars.values().filter(|(line, _)| line.is_finished()).count();
        self.header.set_message(format!("({done}/{})", bars.len()));
    }

    /// Stops the header, marking a finished build, and leaves the final rendering on screen.
    fn close(&self, finished: bool) {
        let message = self.header.message();
        self.header.finish_with_message(if finished { format!("{message} FINISHED") } else { message });
    }
}

/// The terminal's width in columns (80 when unknown).
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills the winsize struct it is given, which lives across the call.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 { usize::from(size.ws_col) } else { 80 }
}

/// `line` cut to `width` characters, so a long line never wraps and breaks the redraw.
fn truncate(line: &str, width: usize) -> String {
    line.chars().take(width).collect()
}

impl Progress for Tty {
    fn started(&self, node: NodeId, description: &str) {
        self.show(node, &self.steps.start(node, description));
    }

    fn output(&self, node: NodeId, _stream: Stream, line: &str) {
        self.show(node, &self.steps.output(node, line).0);
    }

    fn cached(&self, node: NodeId, description: &str) {
        self.show(node, &self.steps.cached(node, description));
    }

    fn finished(&self, node: NodeId, elapsed: Duration) {
        self.show(node, &self.steps.finished(node, elapsed));
    }

    fn failed(&self, node: NodeId, error: &str) {
        self.show(node, &self.steps.failed(node, error));
    }
}

impl BuildProgress for Tty {
    fn end(&self, end: End<'_>) {
        match end {
            End::Built(image) => {
                self.close(true);
                eprintln!("{}", self.steps.summary(image));
            }
            End::Failed => {
                self.close(false);
                eprint!("{}", self.steps.error_logs());
            }
            End::Canceled => {
                for (node, step) in self.steps.cancel_running() {
                    self.show(node, &step);
                }
                self.close(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_update_and_ending_renders_without_a_terminal() {
        // Without a terminal indicatif draws nothing, but every path of the view still runs.
        let tty = Tty::new(Steps::new([]));
        tty.started(NodeId(0), "[1/3] RUN echo");
        (0..10).for_each(|i| tty.output(NodeId(0), Stream::Stdout, &format!("line {i}")));
        tty.cached(NodeId(1), "[2/3] COPY . /");
        tty.finished(NodeId(0), Duration::from_millis(20));
        tty.started(NodeId(2), "[3/3] RUN false");
        tty.failed(NodeId(2), "exit code: 1");
        tty.started(NodeId(3), "[3/3] RUN sleep 60");
        tty.end(End::Canceled);
        assert_eq!(tty.header.message(), "(4/4)");
        let bars = tty.bars.lock().unwrap();
        assert!(bars.values().all(|(line, log)| line.is_finished() && log.is_none()));
    }

    #[test]
    fn long_lines_are_cut_to_the_width() {
        assert_eq!(super::truncate("héllo world", 5), "héllo");
        assert_eq!(super::truncate("hi", 5), "hi");
    }
}
