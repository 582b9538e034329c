//! `--progress=rawjson`: one BuildKit `SolveStatus` JSON object per update, as buildx prints it (moby/buildkit
//! `client/graph.go`): `{"vertexes":[{"digest","inputs","name","started","completed","cached","error"}]}` for
//! step changes and `{"logs":[{"vertex","stream","data","timestamp"}]}` for output, `data` in base64 and times
//! in RFC 3339 with nanoseconds. A canceled step's error is `context canceled`, as BuildKit reports it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Serialize;
use strata_llb::{Graph, NodeId};
use strata_solver::{Progress, Stream};

use super::state::{State, Step, Steps};
use super::{BuildProgress, End, Out, write};

/// BuildKit's `SolveStatus`, its fields in Go's order; empty ones are left out as Go's `omitempty` does.
#[derive(Debug, Default, Serialize)]
struct SolveStatus<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vertexes: Vec<Vertex<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs: Vec<VertexLog<'a>>,
}

/// BuildKit's `Vertex`.
#[derive(Debug, Serialize)]
struct Vertex<'a> {
    digest: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    inputs: &'a [String],
    name: &'a str,
    started: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// BuildKit's `VertexLog`: `data` is bytes, which Go's JSON writes in base64.
#[derive(Debug, Serialize)]
struct VertexLog<'a> {
    vertex: &'a str,
    stream: u8,
    data: String,
    timestamp: String,
}

/// Prints JSON lines.
pub struct RawJson {
    steps: Steps,
    out: Out,
    /// Each node's digest and its inputs' digests, as the vertex names them.
    vertices: HashMap<NodeId, (String, Vec<String>)>,
}

impl RawJson {
    /// A printer for the nodes of `graph`, writing to `out`.
    pub(super) fn new(steps: Steps, graph: &Graph, out: Out) -> Self {
        let vertices = graph
            .nodes()
            .iter()
            .map(|node| {
                let inputs = node.inputs.iter().map(|&input| graph.node(input).digest.to_string()).collect();
                (node.id, (node.digest.to_string(), inputs))
            })
            .collect();
        Self { steps, out, vertices }
    }

    fn digest(&self, node: NodeId) -> &str {
        self.vertices.get(&node).map_or("", |(digest, _)| digest)
    }

    fn send(&self, status: &SolveStatus<'_>) {
        let line = serde_json::to_string(status).expect("a SolveStatus always serializes");
        write(&self.out, &format!("{line}\n"));
    }

    /// Sends the vertex of `step`.
    fn send_vertex(&self, node: NodeId, step: &Step) {
        let now = SystemTime::now();
        let started = now.checked_sub(step.started.elapsed()).unwrap_or(now);
        let vertex = Vertex {
            digest: self.digest(node),
            inputs: self.vertices.get(&node).map_or(&[], |(_, inputs)| inputs.as_slice()),
            name: &step.name,
            started: timestamp(started),
            completed: step.is_complete().then(|| timestamp(now)),
            cached: step.state == State::Cached,
            error: match &step.state {
                State::Failed(error) => Some(error),
                State::Canceled => Some("context canceled"),
                State::Running | State::Done(_) | State::Cached => None,
            },
        };
        self.send(&SolveStatus { vertexes: vec![vertex], ..Default::default() });
    }
}

/// Go's JSON time: RFC 3339 UTC with nanoseconds.
fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let seconds = strata_exporter::rfc3339(since.as_secs() as i64);
    format!("{}.{:09}Z", seconds.trim_end_matches('Z'), since.subsec_nanos())
}

impl Progress for RawJson {
    fn started(&self, node: NodeId, description: &str) {
        self.send_vertex(node, &self.steps.start(node, description));
    }

    fn output(&self, node: NodeId, stream: Stream, line: &str) {
        self.steps.output(node, line);
        let data = base64::engine::general_purpose::STANDARD.encode(format!("{line}\n"));
        let log = VertexLog {
            vertex: self.digest(node),
            stream: stream as u8,
            data,
            timestamp: timestamp(SystemTime::now()),
        };
        self.send(&SolveStatus { logs: vec![log], ..Default::default() });
    }

    fn cached(&self, node: NodeId, description: &str) {
        self.send_vertex(node, &self.steps.cached(node, description));
    }

    fn finished(&self, node: NodeId, elapsed: Duration) {
        self.send_vertex(node, &self.steps.finished(node, elapsed));
    }

    fn failed(&self, node: NodeId, error: &str) {
        self.send_vertex(node, &self.steps.failed(node, error));
    }
}

impl BuildProgress for RawJson {
    fn end(&self, end: End<'_>) {
        if end == End::Canceled {
            for (node, step) in self.steps.cancel_running() {
                self.send_vertex(node, &step);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use strata_llb::{NodeMeta, Op, SourceOp};

    use serde_json::Value;

    use super::*;
    use crate::cmd::build::progress::test_out::Buffer;

    #[test]
    fn updates_are_solve_status_json_lines() {
        let mut graph = Graph::default();
        let meta = NodeMeta { description: "[1/2] FROM busybox".into(), ..Default::default() };
        let context = SourceOp::Local { name: "context".into(), include: vec![], exclude: vec![] };
        let base = graph.add(Op::Source(context), vec![], meta);
        let buffer = Buffer::default();
        let progress = RawJson::new(Steps::new([b"s3cret".as_slice()]), &graph, buffer.out());
        progress.started(base, "[1/2] FROM busybox s3cret");
        progress.output(base, Stream::Stdout, "hello");
        progress.output(base, Stream::Stderr, "oops");
        progress.finished(base, Duration::from_millis(3));
        progress.end(End::Built(Some("sha256:abc")));
        let text = buffer.text();
        let last = text.lines().last().unwrap();
        assert!(last.starts_with(r#"{"vertexes":[{"digest":"blake3:"#), "{last}");
        let order = ["\"name\"", "\"started\"", "\"completed\""].map(|key| last.find(key).unwrap());
        assert!(order.is_sorted(), "Go's field order: {last}");
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 4, "one object per update and no summary: {lines:?}");
        let digest = graph.node(base).digest.to_string();
        let started = &lines[0]["vertexes"][0];
        assert_eq!(started["digest"], digest.as_str());
        assert_eq!(started["name"], "[1/2] FROM busybox ****");
        assert!(started["started"].as_str().unwrap().ends_with('Z'), "{started}");
        assert!(started.get("completed").is_none(), "{started}");
        let log = &lines[1]["logs"][0];
        assert_eq!(log["vertex"], digest.as_str());
        assert_eq!(log["stream"], 1);
        assert_eq!(log["data"], "aGVsbG8K", "base64 of the line with its newline");
        assert!(log["timestamp"].is_string());
        assert_eq!(lines[2]["logs"][0]["stream"], 2, "standard error");
        let done = &lines[3]["vertexes"][0];
        assert!(done["completed"].is_string() && done.get("cached").is_none(), "{done}");
    }

    #[test]
    fn times_are_go_json_times() {
        let time = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(timestamp(time), "2023-11-14T22:13:20.000000005Z");
    }
}
