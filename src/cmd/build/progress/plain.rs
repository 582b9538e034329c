//! `--progress=plain`: BuildKit's text format (progressui's `textMux`): a block per step headed `#N name`,
//! output lines as `#N 0.123 line` (seconds since the step started), closed by `#N DONE 0.1s`, `#N CACHED`,
//! `#N ERROR: ...` or `#N CANCELED`; a blank line between blocks, and `#N ...` when another step interrupts a
//! running one's block.

use std::sync::Mutex;
use std::time::Duration;

use strata_llb::NodeId;
use strata_solver::{Progress, Stream};

use super::state::{State, Step, Steps, log_time};
use super::{BuildProgress, End, Out, write};

/// Prints plain progress.
pub struct Plain {
    steps: Steps,
    out: Out,
    /// The step whose block is open (running), and whether anything was printed yet.
    cursor: Mutex<(Option<usize>, bool)>,
}

impl Plain {
    /// A printer writing to `out`.
    pub(super) fn new(steps: Steps, out: Out) -> Self {
        Self { steps, out, cursor: Mutex::new((None, false)) }
    }

    /// Prints `lines` in the block of `step`, opening it first when another block is open; a complete step
    /// closes its block.
    fn print(&self, step: &Step, lines: &[String]) {
        let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let (current, printed) = &mut *cursor;
        let mut text = String::new();
        if *current != Some(step.number) {
            if let Some(open) = current {
                text.push_str(&format!("#{open} ...\n"));
            }
            if *printed {
                text.push('\n');
            }
            text.push_str(&format!("#{} {}\n", step.number, step.name));
        }
        for line in lines {
            text.push_str(&format!("#{} {line}\n", step.number));
        }
        *printed = true;
        *current = (!step.is_complete()).then_some(step.number);
        write(&self.out, &text);
    }

    /// The closing line of a complete step.
    fn closing(step: &Step) -> Option<String> {
        match &step.state {
            State::Running => None,
            State::Done(elapsed) => Some(format!("DONE {:.1}s", elapsed.as_secs_f64())),
            State::Cached => Some("CACHED".to_owned()),
            State::Failed(error) => Some(format!("ERROR: {error}")),
            State::Canceled => Some("CANCELED".to_owned()),
        }
    }

    fn close(&self, step: &Step) {
        self.print(step, &Self::closing(step).into_iter().collect::<Vec<_>>());
    }
}

impl Progress for Plain {
    fn started(&self, node: NodeId, description: &str) {
        self.print(&self.steps.start(node, description), &[]);
    }

    fn output(&self, node: NodeId, _stream: Stream, line: &str) {
        let (step, since) = self.steps.output(node, line);
        self.print(&step, &[format!("{} {line}", log_time(since))]);
    }

    fn cached(&self, node: NodeId, description: &str) {
        self.close(&self.steps.cached(node, description));
    }

    fn finished(&self, node: NodeId, elapsed: Duration) {
        self.close(&self.steps.finished(node, elapsed));
    }

    fn failed(&self, node: NodeId, error: &str) {
        self.close(&self.steps.failed(node, error));
    }
}

impl BuildProgress for Plain {
    fn end(&self, end: End<'_>) {
        match end {
            End::Built(image) => write(&self.out, &format!("\n{}\n", self.steps.summary(image))),
            End::Failed => write(&self.out, &self.steps.error_logs()),
            End::Canceled => self.steps.cancel_running().iter().for_each(|(_, step)| self.close(step)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::build::progress::test_out::Buffer;

    fn plain() -> (Plain, Buffer) {
        let buffer = Buffer::default();
        (Plain::new(Steps::new([]), buffer.out()), buffer)
    }

    /// The text with the timing numbers (`0.123`, `0.1s`) replaced by `T`, for exact comparisons.
    fn untimed(text: &str) -> String {
        text.lines()
            .map(|line| {
                line.split(' ')
                    .map(|word| {
                        let number = word.trim_end_matches('s');
                        if number.contains('.') && number.parse::<f64>().is_ok() { "T" } else { word }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn steps_print_as_buildkit_blocks() {
        let (plain, buffer) = plain();
        plain.cached(NodeId(0), "[1/3] FROM docker.io/library/busybox");
        plain.started(NodeId(1), "[2/3] RUN echo hi");
        plain.output(NodeId(1), Stream::Stdout, "hi");
        plain.finished(NodeId(1), Duration::from_millis(120));
        plain.end(End::Built(Some("sha256:abc")));
        let text = buffer.text();
        assert_eq!(
            untimed(&text.lines().take(7).collect::<Vec<_>>().join("\n")),
            "#1 [1/3] FROM docker.io/library/busybox\n#1 CACHED\n\n#2 [2/3] RUN echo hi\n#2 T hi\n#2 DONE T\n"
                .trim_end()
        );
        assert!(text.contains("#2 DONE 0.1s\n"), "{text}");
        assert!(text.lines().last().unwrap().ends_with("(2 steps: 1 cached, 1 run) sha256:abc"), "{text}");
    }

    #[test]
    fn an_interrupted_block_is_marked_and_reopened() {
        let (plain, buffer) = plain();
        plain.started(NodeId(0), "[a 1/2] RUN sleep 1");
        plain.started(NodeId(1), "[b 1/2] RUN echo b");
        plain.output(NodeId(0), Stream::Stdout, "a");
        plain.failed(NodeId(0), "exit code: 1");
        plain.end(End::Failed);
        assert_eq!(
            untimed(&buffer.text()),
            "#1 [a 1/2] RUN sleep 1\n#1 ...\n\n#2 [b 1/2] RUN echo b\n#2 ...\n\n#1 [a 1/2] RUN sleep 1\n#1 T a\n\
             #1 ERROR: exit code: 1\n------\n > [a 1/2] RUN sleep 1:\na\n------"
        );
    }

    #[test]
    fn canceled_steps_are_closed_as_canceled() {
        let (plain, buffer) = plain();
        plain.started(NodeId(0), "[1/2] RUN sleep 60");
        plain.end(End::Canceled);
        assert_eq!(buffer.text(), "#1 [1/2] RUN sleep 60\n#1 CANCELED\n");
    }
}
