//! What every progress mode knows about the build: steps numbered `#N` in the order they show up, their state,
//! the last lines each printed, and the counts for the closing summary. Names and errors go through the
//! secret redactor, so strata itself never prints a secret value.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata_llb::NodeId;

/// How many of a step's last output lines are kept, for the tty view and the error block.
pub const TAIL: usize = 10;

/// Where a step is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Running since [`Step::started`].
    Running,
    /// Finished in this time.
    Done(Duration),
    /// Taken from the cache.
    Cached,
    /// Failed with this (redacted) message.
    Failed(String),
    /// Stopped by Ctrl-C.
    Canceled,
}

/// One step as the modes show it.
#[derive(Debug, Clone)]
pub struct Step {
    /// BuildKit's `#N`.
    pub number: usize,
    /// The step's description, redacted.
    pub name: String,
    /// When it was first seen.
    pub started: Instant,
    /// Where it is.
    pub state: State,
    /// Its last [`TAIL`] output lines.
    pub tail: VecDeque<String>,
}

impl Step {
    /// Whether the step is over.
    pub fn is_complete(&self) -> bool {
        self.state != State::Running
    }
}

/// The steps of one build, shared by the solver's tasks.
pub struct Steps {
    started: Instant,
    secrets: Vec<String>,
    steps: Mutex<(Vec<NodeId>, HashMap<NodeId, Step>)>,
}

impl Steps {
    /// No steps yet; `secrets` are the values never to print.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let secrets =
            secrets.into_iter().filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        Self { started: Instant::now(), secrets, steps: Mutex::new((Vec::new(), HashMap::new())) }
    }

    /// `text` with every secret value replaced by `****`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |text, secret| text.replace(secret.as_str(), "****"))
    }

    /// Applies `change` to the step of `node`, numbering it (named `description`) on first sight, and returns
    /// a copy of it.
    fn update(&self, node: NodeId, description: &str, change: impl FnOnce(&mut Step)) -> Step {
        let mut guard = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        let (order, steps) = &mut *guard;
        let step = steps.entry(node).or_insert_with(|| {
            order.push(node);
            Step {
                number: order.len(),
                name: self.redact(description),
                started: Instant::now(),
                state: State::Running,
                tail: VecDeque::new(),
            }
        });
        change(step);
        step.clone()
    }

    /// A step starts.
    pub fn start(&self, node: NodeId, description: &str) -> Step {
        self.update(node, description, |step| {
            step.started = Instant::now();
            step.state = State::Running;
        })
    }

    /// A step printed `line`; returns the step and the time since it started.
    pub fn output(&self, node: NodeId, line: &str) -> (Step, Duration) {
        let step = self.update(node, "", |step| {
            if step.tail.len() == TAIL {
                step.tail.pop_front();
            }
            step.tail.push_back(line.to_owned());
        });
        let since = step.started.elapsed();
        (step, since)
    }

    /// A step came from the cache.
    pub fn cached(&self, node: NodeId, description: &str) -> Step {
        self.update(node, description, |step| step.state = State::Cached)
    }

    /// A step finished.
    pub fn finished(&self, node: NodeId, elapsed: Duration) -> Step {
        self.update(node, "", |step| step.state = State::Done(elapsed))
    }

    /// A step failed.
    pub fn failed(&self, node: NodeId, error: &str) -> Step {
        let error = self.redact(error);
        self.update(node, "", |step| step.state = State::Failed(error))
    }

    /// Marks every running step canceled and returns them with their nodes.
    pub fn cancel_running(&self) -> Vec<(NodeId, Step)> {
        let mut guard = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        let (order, steps) = &mut *guard;
        let mut canceled = Vec::new();
        for node in order.iter() {
            if let Some(step) = steps.get_mut(node).filter(|step| step.state == State::Running) {
                step.state = State::Canceled;
                canceled.push((*node, step.clone()));
            }
        }
        canceled
    }

    /// Every step, in `#N` order.
    pub fn all(&self) -> Vec<Step> {
        let guard = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.iter().map(|node| guard.1[node].clone()).collect()
    }

    /// The closing line: `strata: built in 1.42s (5 steps: 3 cached, 2 run) sha256:...`.
    pub fn summary(&self, image: Option<&str>) -> String {
        let steps = self.all();
        let cached = steps.iter().filter(|s| s.state == State::Cached).count();
        let run = steps.iter().filter(|s| matches!(s.state, State::Done(_))).count();
        format!(
            "strata: built in {:.2}s ({} steps: {cached} cached, {run} run){}",
            self.started.elapsed().as_secs_f64(),
            cached + run,
            image.map(|digest| format!(" {digest}")).unwrap_or_default()
        )
    }

    /// BuildKit's block after a failed build: each failed step's name and last output lines between dashes.
    pub fn error_logs(&self) -> String {
        let mut text = String::new();
        for step in self.all().iter().filter(|s| matches!(s.state, State::Failed(_))) {
            text.push_str(&format!("------\n > {}:\n", step.name));
            step.tail.iter().for_each(|line| text.push_str(&format!("{line}\n")));
            text.push_str("------\n");
        }
        text
    }
}

/// BuildKit's log timestamp: seconds since the step started, with 3 decimals under 10s, 2 under 100s, else 1.
pub fn log_time(since: Duration) -> String {
    let seconds = since.as_secs_f64();
    let precision = if seconds < 10.0 {
        3
    } else if seconds < 100.0 {
        2
    } else {
        1
    };
    format!("{seconds:.precision$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order_of_appearance() {
        let steps = Steps::new([]);
        assert_eq!(steps.start(NodeId(7), "[1/2] FROM busybox").number, 1);
        assert_eq!(steps.cached(NodeId(3), "[2/2] RUN true").number, 2);
        assert_eq!(steps.finished(NodeId(7), Duration::from_millis(5)).number, 1);
        let summary = steps.summary(Some("sha256:abc"));
        assert!(summary.starts_with("strata: built in "), "{summary}");
        assert!(summary.ends_with("(2 steps: 1 cached, 1 run) sha256:abc"), "{summary}");
    }

    #[test]
    fn secret_values_never_reach_names_or_errors() {
        let steps = Steps::new([b"hunter2".as_slice(), b"".as_slice()]);
        let step = steps.start(NodeId(0), "RUN echo hunter2");
        assert_eq!(step.name, "RUN echo ****");
        let step = steps.failed(NodeId(0), "process \"echo hunter2\" failed");
        assert_eq!(step.state, State::Failed("process \"echo ****\" failed".into()));
    }

    #[test]
    fn only_the_last_lines_are_kept_and_shown_on_failure() {
        let steps = Steps::new([]);
        steps.start(NodeId(0), "RUN noisy");
        for i in 0..TAIL + 3 {
            steps.output(NodeId(0), &format!("line {i}"));
        }
        steps.failed(NodeId(0), "exit code: 1");
        let logs = steps.error_logs();
        assert!(logs.starts_with("------\n > RUN noisy:\nline 3\n"), "{logs}");
        assert!(logs.ends_with(&format!("line {}\n------\n", TAIL + 2)), "{logs}");
    }

    #[test]
    fn running_steps_are_canceled_and_finished_ones_kept() {
        let steps = Steps::new([]);
        steps.start(NodeId(0), "RUN sleep 60");
        steps.cached(NodeId(1), "RUN true");
        let canceled = steps.cancel_running();
        assert_eq!(canceled.len(), 1);
        assert_eq!(canceled[0].0, NodeId(0));
        assert_eq!(canceled[0].1.state, State::Canceled);
    }

    #[test]
    fn log_times_have_buildkits_precision() {
        assert_eq!(log_time(Duration::from_millis(1234)), "1.234");
        assert_eq!(log_time(Duration::from_millis(12_345)), "12.35");
        assert_eq!(log_time(Duration::from_millis(123_456)), "123.5");
    }
}
