//! Lowering semantics that the conformance suite cannot see from an image config: graph shape, cache-key
//! inputs and what is resolved.

use std::cell::RefCell;

use strata_llb::{Definition, ExecOp, FileAction, ImageConfig, MountKind, NetworkMode, Op, Platform, SourceOp};

use super::*;
use crate::parser::parse;

/// Records what was resolved; busybox has Docker Hub's config, anything else fails.
#[derive(Default)]
struct Recorder(RefCell<Vec<String>>);

impl ImageResolver for Recorder {
    fn resolve(&self, reference: &str, _platform: &Platform) -> Result<ResolvedImage, String> {
        self.0.borrow_mut().push(reference.to_owned());
        if reference != "busybox" {
            return Err(format!("{reference}: not found"));
        }
        let config = ImageConfig { env: Some(vec!["PATH=/bin".into()]), ..Default::default() };
        Ok(ResolvedImage { reference: "docker.io/library/busybox:latest".into(), config })
    }
}

fn lowered(text: &str, options: &LowerOptions) -> Definition {
    lower(&parse(text, "Dockerfile").unwrap(), options, &Recorder::default()).unwrap()
}

fn execs(definition: &Definition) -> Vec<&ExecOp> {
    definition.graph.nodes().iter().filter_map(|n| if let Op::Exec(e) = &n.op { Some(e) } else { None }).collect()
}

fn root_digest(definition: &Definition) -> String {
    definition.graph.node(definition.root.unwrap()).digest.to_string()
}

#[test]
fn unreachable_stages_are_neither_resolved_nor_lowered() {
    let recorder = Recorder::default();
    let text = "FROM broken AS unused\nRUN false\nFROM busybox\nRUN true\n";
    let definition = lower(&parse(text, "Dockerfile").unwrap(), &LowerOptions::new(), &recorder).unwrap();
    assert_eq!(*recorder.0.borrow(), ["busybox"]);
    assert_eq!(execs(&definition).len(), 1);
}

#[test]
fn declared_args_change_the_run_key_undeclared_and_proxy_args_do_not() {
    let text = "FROM busybox\nARG FOO\nRUN echo $FOO\n";
    let base = root_digest(&lowered(text, &LowerOptions::new()));
    let with_foo = root_digest(&lowered(text, &LowerOptions::new().build_arg("FOO", "1")));
    let undeclared = root_digest(&lowered(text, &LowerOptions::new().build_arg("BAR", "1")));
    let proxied = lowered(text, &LowerOptions::new().build_arg("http_proxy", "http://p:3128"));
    assert_ne!(base, with_foo);
    assert_eq!(base, undeclared);
    assert_eq!(base, root_digest(&proxied));
    assert_eq!(execs(&proxied)[0].proxy_env, ["http_proxy=http://p:3128"]);
    assert!(!proxied.graph.to_json().contains("3128"), "proxy values stay out of printed graphs");
}

#[test]
fn args_reach_run_env_only_when_declared_and_set() {
    let definition = lowered("FROM busybox\nARG FOO\nARG BAR=\nENV E=1\nRUN env\n", &LowerOptions::new());
    let env = &execs(&definition)[0].env;
    assert!(env.contains(&"BAR=".to_owned()) && env.contains(&"E=1".to_owned()), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("FOO=")), "{env:?}");
    assert_eq!(definition.config.env.as_deref(), Some(&["PATH=/bin".to_owned(), "E=1".to_owned()][..]));
}

#[test]
fn copy_link_is_a_merge_over_the_stage() {
    let definition = lowered("FROM busybox\nCOPY --link a /a\n", &LowerOptions::new());
    let root = definition.graph.node(definition.root.unwrap());
    assert!(matches!(root.op, Op::Merge));
    let copied = definition.graph.node(root.inputs[1]);
    assert!(matches!(&copied.op, Op::File(f) if f.base.is_none()));
}

#[test]
fn shebang_heredoc_runs_from_a_mounted_script_and_plain_heredoc_through_the_shell() {
    let definition = lowered(
        "FROM busybox\nRUN <<EOF\n#!/bin/awk -f\nBEGIN{}\nEOF\nRUN <<EOF\necho hi\nEOF\n",
        &LowerOptions::new(),
    );
    let runs = execs(&definition);
    assert_eq!(runs[0].args, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert!(runs[0].mounts.iter().any(|m| m.target == "/dev/pipes/" && m.readonly));
    assert_eq!(runs[1].args, ["/bin/sh", "-c", "echo hi\n"]);
}

#[test]
fn mounts_get_buildkit_defaults_and_secrets_only_their_id() {
    let text = "FROM busybox\nWORKDIR /w\nRUN --mount=type=cache,target=cache --mount=type=secret,id=tok,env=TOKEN \
                --mount=target=/ctx true\n";
    let definition = lowered(text, &LowerOptions::new());
    let mounts = &execs(&definition)[0].mounts;
    // BuildKit takes the id from the target as written, before making the target absolute.
    assert!(matches!(&mounts[1].kind, MountKind::Cache { id, .. } if id == "cache"));
    assert_eq!(mounts[1].target, "/w/cache");
    assert!(matches!(&mounts[2].kind, MountKind::Secret { id, env: Some(env), .. } if id == "tok" && env == "TOKEN"));
    assert!(matches!(mounts[3].kind, MountKind::Bind) && mounts[3].readonly);
    let context =
        definition.graph.node(definition.graph.node(definition.root.unwrap()).inputs[mounts[3].input.unwrap()]);
    assert!(matches!(&context.op, Op::Source(SourceOp::Local { name, .. }) if name == "context"));
}

#[test]
fn stage_triggers_run_in_the_child_once_and_are_cleared() {
    let text = "FROM busybox AS base\nONBUILD RUN touch /x\nFROM base AS child\nFROM child\n";
    let definition = lowered(text, &LowerOptions::new());
    assert_eq!(execs(&definition).len(), 1);
    assert_eq!(definition.config.on_build, None);
    let base = lowered(text, &LowerOptions::new().target(Some("base".into())));
    assert_eq!(base.config.on_build.as_deref(), Some(&["RUN touch /x".to_owned()][..]));
    assert!(execs(&base).is_empty());
}

#[test]
fn workdir_is_relative_to_the_previous_and_creates_the_directory() {
    let definition = lowered("FROM busybox\nWORKDIR /a\nWORKDIR b/../c\nCOPY x .\n", &LowerOptions::new());
    assert_eq!(definition.config.working_dir.as_deref(), Some("/a/c"));
    let copy = definition.graph.nodes().iter().find_map(|n| match &n.op {
        Op::File(f) => {
            f.actions.iter().find_map(|a| if let FileAction::Copy(c) = a { Some(c.dest.clone()) } else { None })
        }
        _ => None,
    });
    assert_eq!(copy.as_deref(), Some("/a/c/"));
    let history: Vec<_> =
        definition.steps.iter().map(|s| (s.history.created_by.clone().unwrap(), s.node.is_some())).collect();
    assert_eq!(history[0], ("WORKDIR /a".to_owned(), true));
}

#[test]
fn global_args_feed_from_and_platform_args_are_predefined() {
    let options = LowerOptions::new().target_platform("linux/arm64".parse().unwrap()).build_arg("NAME", "busybox");
    let text = "ARG NAME=nothing\nFROM $NAME\nARG TARGETARCH\nRUN echo $TARGETARCH\n";
    let definition = lowered(text, &options);
    assert!(execs(&definition)[0].env.contains(&"TARGETARCH=arm64".to_owned()));
    assert_eq!(definition.platform.to_string(), "linux/arm64/v8");
}

#[test]
fn step_labels_are_buildkits() {
    let descriptions = |text: &str| -> Vec<String> {
        let definition = lowered(text, &LowerOptions::new());
        let steps = definition.graph.nodes().iter().map(|n| n.meta.description.clone());
        steps.filter(|d| !d.starts_with("[internal] ")).collect()
    };
    let definition = lowered("FROM busybox\nCOPY . /\n", &LowerOptions::new());
    let internal: Vec<&str> = definition.graph.nodes().iter().map(|n| n.meta.description.as_str()).collect();
    assert_eq!(
        internal,
        [
            "[internal] load metadata for docker.io/library/busybox:latest",
            "[internal] load build context",
            "[2/2] COPY . /"
        ]
    );
    let one = descriptions(&format!("FROM busybox\n{}", "RUN echo\n".repeat(10)));
    assert_eq!(one[0], "[ 2/11] RUN echo", "no stage name in a one-stage Dockerfile; padded to the total");
    assert_eq!(one[9], "[11/11] RUN echo");
    let two = descriptions("FROM busybox AS build\nRUN echo a\nFROM busybox\nCOPY --from=build / /\n");
    assert_eq!(two, ["[build 2/2] RUN echo a", "[stage-1 2/2] COPY --from=build / /"]);
}

fn local(name: &str) -> NamedContext {
    NamedContext::Local { name: name.into(), exclude: vec!["*.log".into()] }
}

fn local_sources(definition: &Definition) -> Vec<String> {
    let sources = definition.graph.nodes().iter().filter_map(|n| match &n.op {
        Op::Source(SourceOp::Local { name, .. }) => Some(name.clone()),
        _ => None,
    });
    sources.collect()
}

#[test]
fn named_contexts_stand_for_copy_and_mount_sources() {
    let recorder = Recorder::default();
    let text = "FROM busybox\nCOPY --from=assets /a /a\nRUN --mount=from=tools,target=/t /t/run\n";
    let options = LowerOptions::new().named_context("assets", local("assets")).named_context("tools", local("tools"));
    let definition = lower(&parse(text, "Dockerfile").unwrap(), &options, &recorder).unwrap();
    assert_eq!(*recorder.0.borrow(), ["busybox"], "context names are not resolved as images");
    assert_eq!(local_sources(&definition), ["assets", "tools"]);
    let excludes = definition.graph.nodes().iter().find_map(|n| match &n.op {
        Op::Source(SourceOp::Local { exclude, .. }) => Some(exclude.clone()),
        _ => None,
    });
    assert_eq!(excludes.unwrap(), ["*.log"], "a directory context keeps its .dockerignore patterns");
}

#[test]
fn image_contexts_replace_from_under_their_familiar_name() {
    let recorder = Recorder::default();
    let text = "FROM docker.io/library/base:latest\nRUN true\n";
    let options = LowerOptions::new().named_context("base", NamedContext::Image("busybox".into()));
    let definition = lower(&parse(text, "Dockerfile").unwrap(), &options, &recorder).unwrap();
    assert_eq!(*recorder.0.borrow(), ["busybox"]);
    assert_eq!(definition.base.unwrap().reference, "docker.io/library/busybox:latest");
    assert_eq!(definition.config.env, Some(vec!["PATH=/bin".into()]), "the context image's config applies");
}

#[test]
fn a_named_context_replaces_a_stage_and_its_instructions() {
    let recorder = Recorder::default();
    let text = "FROM broken AS build\nRUN make\nFROM busybox\nCOPY --from=build /out /out\n";
    let options = LowerOptions::new().named_context("build", local("prebuilt"));
    let definition = lower(&parse(text, "Dockerfile").unwrap(), &options, &recorder).unwrap();
    assert_eq!(*recorder.0.borrow(), ["busybox"], "the replaced stage's FROM is never resolved");
    assert!(execs(&definition).is_empty(), "the replaced stage's RUN is not lowered");
    assert_eq!(local_sources(&definition), ["prebuilt"]);
}

#[test]
fn a_directory_context_as_base_is_a_layer() {
    let text = "FROM app\n";
    let definition = lowered(text, &LowerOptions::new().named_context("app", local("app")));
    assert!(definition.base.is_none());
    let root = definition.root.unwrap();
    assert!(matches!(&definition.graph.node(root).op, Op::Source(SourceOp::Local { name, .. }) if name == "app"));
    assert_eq!(definition.steps.len(), 1);
    assert_eq!(definition.steps[0].node, Some(root), "the directory is recorded as a layer step");
    let scratch = lowered("FROM empty\nCOPY --from=empty / /\n", &{
        LowerOptions::new().named_context("empty", NamedContext::Image("scratch".into()))
    });
    assert!(scratch.base.is_none());
}

#[test]
fn remote_add_sources_are_not_unpacked_by_default() {
    let unpacks = |text: &str| {
        let definition = lowered(text, &LowerOptions::new());
        let copies = definition.graph.nodes().iter().filter_map(|n| match &n.op {
            Op::File(file) => {
                file.actions.iter().find_map(|a| if let FileAction::Copy(c) = a { Some(c.unpack) } else { None })
            }
            _ => None,
        });
        copies.collect::<Vec<_>>()
    };
    assert_eq!(unpacks("FROM busybox\nADD https://example.com/a.tar.gz /\n"), [false]);
    assert_eq!(unpacks("FROM busybox\nADD --unpack=true https://example.com/a.tar.gz /\n"), [true]);
    assert_eq!(unpacks("FROM busybox\nADD a.tar.gz /\n"), [true]);
}

#[test]
fn url_credentials_stay_out_of_history_and_progress() {
    let definition = lowered("FROM busybox\nADD https://user:secret@example.com/f /\n", &LowerOptions::new());
    let history: Vec<String> = definition.steps.iter().filter_map(|s| s.history.created_by.clone()).collect();
    assert_eq!(history, ["ADD https://user:xxxxx@example.com/f / # buildkit"]);
    for node in definition.graph.nodes() {
        assert!(!node.meta.description.contains("secret"), "{}", node.meta.description);
    }
}

#[test]
fn the_builds_network_is_the_default_of_steps_that_choose_none() {
    let text = "FROM busybox\nRUN a\nRUN --network=host b\n";
    let networks = |options: &LowerOptions| -> Vec<NetworkMode> {
        execs(&lowered(text, options)).iter().map(|exec| exec.network).collect()
    };
    assert_eq!(networks(&LowerOptions::new()), [NetworkMode::Default, NetworkMode::Host]);
    assert_eq!(networks(&LowerOptions::new().network(NetworkMode::None)), [NetworkMode::None, NetworkMode::Host]);
}
