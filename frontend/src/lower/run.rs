//! RUN: the command (exec form, shell form, heredoc scripts), its `--mount`s, network and security.

use strata_llb::patterns::clean;
use strata_llb::{ExecMount, ExecOp, FileAction, FileOp, MountKind, NetworkMode, NodeId, NodeMeta, Op, SecurityMode};

use super::args::proxy_env;
use super::dispatch::{DEFAULT_PATH, Lowering, StageState, with_shell};
use super::stages::{Stage, StageRef, Step};
use crate::error::Error;
use crate::instructions::{Command, Instruction, MountSpec, MountType, parse_mount};
use crate::parser::heredoc::marker;
use crate::shell::Env;

/// Where a heredoc script with a shebang is mounted, as BuildKit does.
const PIPES_DIR: &str = "/dev/pipes/";

/// The node inputs of an exec op, each node once.
#[derive(Default)]
struct Inputs(Vec<NodeId>);

impl Inputs {
    /// The input index of `node`, adding it if new; `None` stays `None` (an empty directory).
    fn index(&mut self, node: Option<NodeId>) -> Option<usize> {
        let node = node?;
        Some(self.0.iter().position(|n| *n == node).unwrap_or_else(|| {
            self.0.push(node);
            self.0.len() - 1
        }))
    }
}

impl Lowering<'_> {
    /// Lowers a RUN into an exec op whose root mount is the stage's filesystem.
    pub(super) fn dispatch_run(
        &mut self,
        state: &mut StageState,
        stage: &Stage,
        step: &Step,
        meta: NodeMeta,
    ) -> Result<(), Error> {
        let Instruction::Run { cmd, mounts, network, security, heredocs } = &step.instruction else {
            unreachable!("dispatch_run is called for RUN only")
        };
        let mut inputs = Inputs::default();
        let mut exec_mounts = vec![ExecMount {
            target: "/".into(),
            input: inputs.index(state.root),
            selector: None,
            readonly: false,
            output: true,
            kind: MountKind::Bind,
        }];
        let args = match cmd {
            Command::Exec(args) => args.clone(),
            Command::Shell(line) => {
                let script = match heredocs.as_slice() {
                    [] => line.clone(),
                    [doc] if marker(line.trim()).is_some() && doc.content.starts_with("#!") => {
                        // A script with its own interpreter runs from a file, as BuildKit does.
                        let data = doc.content.clone();
                        let path = format!("/{}", doc.name);
                        let action = FileAction::Mkfile { path, mode: 0o755, data, chown: None };
                        let file = self.graph.add(
                            Op::File(FileOp { base: None, actions: vec![action] }),
                            Vec::new(),
                            NodeMeta { description: format!("{} (script)", meta.description), ..meta.clone() },
                        );
                        exec_mounts.push(ExecMount {
                            target: PIPES_DIR.into(),
                            input: inputs.index(Some(file)),
                            selector: None,
                            readonly: true,
                            output: false,
                            kind: MountKind::Bind,
                        });
                        format!("{PIPES_DIR}{}", doc.name)
                    }
                    [doc] if marker(line.trim()).is_some() => doc.content.clone(),
                    docs => docs.iter().fold(line.clone(), |full, doc| format!("{full}\n{}{}", doc.content, doc.name)),
                };
                with_shell(&state.config, &Command::Shell(script))
            }
        };
        let mut ssh_count = 0;
        for raw in mounts {
            let spec = self
                .expand(step, raw, &state.env)
                .and_then(|expanded| parse_mount(&expanded).map_err(|e| step.node.error(e.to_string())))?;
            let mount = self.exec_mount(state, stage, step, spec, &mut inputs, &mut ssh_count)?;
            exec_mounts.push(mount);
        }
        let mut env: Vec<String> = state.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if state.env.get("PATH").is_none() {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        let op = ExecOp {
            args: args.clone(),
            env,
            cwd: state.cwd(),
            user: state.config.user.clone().unwrap_or_default(),
            network: match network.as_deref() {
                Some("none") => NetworkMode::None,
                Some("host") => NetworkMode::Host,
                _ => self.options.network,
            },
            security: match security.as_deref() {
                Some("insecure") => SecurityMode::Insecure,
                _ => SecurityMode::Sandbox,
            },
            mounts: exec_mounts,
            proxy_env: proxy_env(self.options.build_args()),
        };
        let node = self.graph.add(Op::Exec(op), inputs.0, meta);
        state.root = Some(node);
        state.record(format!("RUN {}", run_history(&args, state)), Some(node));
        Ok(())
    }

    /// One `--mount` as an exec mount; `from=` names a stage or image, otherwise binds read the context.
    fn exec_mount(
        &mut self,
        state: &StageState,
        stage: &Stage,
        step: &Step,
        spec: MountSpec,
        inputs: &mut Inputs,
        ssh_count: &mut usize,
    ) -> Result<ExecMount, Error> {
        let target = spec.target.as_deref().map(|t| absolute(&state.cwd(), t)).unwrap_or_default();
        let source = match &spec.from {
            Some(from) => match self.stages.resolve_from(from) {
                StageRef::Stage(index) if index == stage.index => {
                    let name = stage.display_name();
                    return Err(Error::Build { message: format!("circular dependency detected on stage: {name}") });
                }
                StageRef::Stage(index) => self.stage_root(index)?,
                StageRef::Image => match self.named_context(from) {
                    Some(context) => self.context_root(context, &step.node, &state.platform)?,
                    None => Some(self.image(&step.node, from, &state.platform)?),
                },
            },
            None if spec.kind == MountType::Bind => Some(self.context()),
            None => None,
        };
        let selector = spec.source.as_deref().filter(|s| !s.is_empty()).map(|s| clean(&format!("/{s}")));
        let (mode, uid, gid) = (spec.mode.unwrap_or(0o755), spec.uid.unwrap_or(0), spec.gid.unwrap_or(0));
        let (input, kind) = match spec.kind {
            MountType::Bind => (inputs.index(source), MountKind::Bind),
            MountType::Cache => {
                let id = spec.id.clone().unwrap_or_else(|| target.clone());
                (inputs.index(source), MountKind::Cache { id, sharing: spec.sharing, mode, uid, gid })
            }
            MountType::Tmpfs => (None, MountKind::Tmpfs { size: spec.size_limit }),
            MountType::Secret => {
                let id = spec.id.clone().unwrap_or_default();
                let mode = spec.mode.unwrap_or(0o400);
                (None, MountKind::Secret { id, env: spec.env.clone(), required: spec.required, mode, uid, gid })
            }
            MountType::Ssh => {
                let id = spec.id.clone().unwrap_or_else(|| "default".into());
                let mode = spec.mode.unwrap_or(0o600);
                *ssh_count += 1;
                let kind = MountKind::Ssh { id, required: spec.required, mode, uid, gid };
                let target =
                    if target.is_empty() { format!("/run/buildkit/ssh_agent.{}", *ssh_count - 1) } else { target };
                return Ok(ExecMount { target, input: None, selector: None, readonly: true, output: false, kind });
            }
        };
        Ok(ExecMount { target, input, selector, readonly: spec.read_only, output: false, kind })
    }
}

/// `path` made absolute against the working directory, cleaned.
fn absolute(cwd: &str, path: &str) -> String {
    if path.starts_with('/') { clean(path) } else { clean(&format!("{cwd}/{path}")) }
}

/// BuildKit's RUN history text: `|N K=V ...` for the declared ARGs (as RUN sees them), then the command.
fn run_history(args: &[String], state: &StageState) -> String {
    let mut declared: Vec<(String, String)> = Vec::new();
    for (name, value) in &state.args {
        let value = state.env.get(name).map(str::to_owned).or_else(|| value.clone()).unwrap_or_default();
        match declared.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => declared.push((name.clone(), value)),
        }
    }
    let mut words: Vec<String> = Vec::new();
    if !declared.is_empty() {
        words.push(format!("|{}", declared.len()));
        words.extend(declared.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    words.extend(args.iter().cloned());
    words.join(" ")
}
