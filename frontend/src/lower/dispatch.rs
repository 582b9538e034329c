//! The lowering engine: dispatches each needed stage's instructions into graph nodes and image config
//! changes. Stages are lowered on demand, starting from the target, so a stage nothing needs is never
//! resolved or built.

use strata_llb::patterns::clean;
use strata_llb::{
    BaseImage, Chown, Definition, FileAction, FileOp, Graph, HealthConfig, HistoryEntry, ImageConfig, LayerStep,
    NodeId, NodeMeta, Op, Platform, SourceOp,
};

use super::args::builtin_args;
use super::expose::exposed_ports;
use super::stages::{Stage, StageRef, Stages, Step};
use super::{ImageResolver, LowerOptions};
use crate::error::Error;
use crate::instructions::{Command, Instruction};
use crate::parser::{Node, go_quote, parse};
use crate::shell::{Env, EnvMap, Lexer};

/// PATH for images that set none, as BuildKit and Docker use on Linux.
pub(crate) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Marks history entries as BuildKit's Dockerfile frontend does, so tools that read history recognise them.
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// Where a stage is after some of its instructions.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    /// The current filesystem; `None` is empty (scratch).
    pub root: Option<NodeId>,
    /// Variables visible to expansion and RUN: the image's ENV plus declared ARGs.
    pub env: EnvMap,
    /// The image configuration so far.
    pub config: ImageConfig,
    /// The image the stage started from.
    pub base: Option<BaseImage>,
    /// History and layers since the base image.
    pub steps: Vec<LayerStep>,
    /// Whether CMD was set in this stage (an ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// The platform of the stage.
    pub platform: Platform,
    /// ARGs declared so far with their values, for RUN history.
    pub args: Vec<(String, Option<String>)>,
}

impl StageState {
    /// The working directory, `/` when unset.
    pub fn cwd(&self) -> String {
        self.config.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into())
    }

    /// Records a history entry; `node` is the step's new filesystem when it changed files.
    pub fn record(&mut self, created_by: String, node: Option<NodeId>) {
        let created_by = if node.is_some() { format!("{created_by} # buildkit") } else { created_by };
        let history = HistoryEntry {
            created: None,
            created_by: Some(created_by),
            comment: Some(HISTORY_COMMENT.into()),
            empty_layer: node.is_none(),
        };
        self.steps.push(LayerStep { node, history });
    }
}

enum Slot {
    Pending,
    InProgress,
    Done(Box<StageState>),
}

/// Lowers the stages of one Dockerfile for one target.
pub(crate) struct Lowering<'a> {
    pub(super) stages: &'a Stages,
    pub(super) options: &'a LowerOptions,
    resolver: &'a dyn ImageResolver,
    pub(super) lexer: Lexer,
    global_args: EnvMap,
    pub(super) graph: Graph,
    slots: Vec<Slot>,
    context: Option<NodeId>,
    target: usize,
}

impl<'a> Lowering<'a> {
    /// Evaluates the global ARGs (a build arg replaces a default without evaluating it).
    pub fn new(
        stages: &'a Stages,
        escape: char,
        options: &'a LowerOptions,
        resolver: &'a dyn ImageResolver,
        target: usize,
    ) -> Result<Self, Error> {
        let target_stage = stages.stages[target].name.clone().unwrap_or_else(|| "default".into());
        let mut global_args =
            builtin_args(&options.build_platform, &options.target_platform, &target_stage, &options.build_args);
        let lexer = Lexer::new(escape);
        for step in &stages.global_args {
            let Instruction::Arg(decls) = &step.instruction else { continue };
            for decl in decls {
                let value = match (options.build_args.get(&decl.name), &decl.default) {
                    (Some(given), _) => Some(given.clone()),
                    (None, Some(default)) => Some(expand(&lexer, &step.node, default, &global_args)?),
                    (None, None) => None,
                };
                if let Some(value) = value {
                    global_args.insert(decl.name.clone(), value);
                }
            }
        }
        let slots = stages.stages.iter().map(|_| Slot::Pending).collect();
        Ok(Self { stages, options, resolver, lexer, global_args, graph: Graph::new(), slots, context: None, target })
    }

    /// Lowers the target and everything it needs.
    pub fn finish(mut self) -> Result<Definition, Error> {
        let state = self.stage_state(self.target)?;
        let mut config = state.config;
        if !self.options.labels.is_empty() {
            let labels = config.labels.get_or_insert_with(Default::default);
            labels.extend(self.options.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(Definition {
            graph: self.graph,
            root: state.root,
            base: state.base,
            steps: state.steps,
            config,
            platform: state.platform,
        })
    }

    /// The final state of stage `index`, lowering it first if needed.
    pub(super) fn stage_state(&mut self, index: usize) -> Result<StageState, Error> {
        self.lowered(index).cloned()
    }

    /// The filesystem stage `index` ends with, lowering it first if needed.
    pub(super) fn stage_root(&mut self, index: usize) -> Result<Option<NodeId>, Error> {
        self.lowered(index).map(|state| state.root)
    }

    fn lowered(&mut self, index: usize) -> Result<&StageState, Error> {
        if let Slot::Pending = self.slots[index] {
            self.slots[index] = Slot::InProgress;
            let state = self.lower_stage(index)?;
            self.slots[index] = Slot::Done(Box::new(state));
        }
        match &self.slots[index] {
            Slot::Done(state) => Ok(state),
            _ => {
                let name = self.stages.stages[index].display_name();
                Err(Error::Build { message: format!("circular dependency detected on stage: {name}") })
            }
        }
    }

    /// The build context as a graph node, filtered by `.dockerignore`.
    pub(super) fn context(&mut self) -> NodeId {
        let exclude = self.options.ignore_patterns.clone();
        *self.context.get_or_insert_with(|| {
            let op = Op::Source(SourceOp::Local { name: "context".into(), include: Vec::new(), exclude });
            self.graph.add(
                op,
                Vec::new(),
                NodeMeta { description: "[internal] load build context".into(), ..Default::default() },
            )
        })
    }

    /// A node for an image's filesystem, e.g. for `COPY --from=image`.
    pub(super) fn image(&mut self, node: &Node, reference: &str, platform: &Platform) -> Result<NodeId, Error> {
        let resolved = self.resolver.resolve(reference, platform).map_err(|e| node.error(e))?;
        Ok(self.image_node(&resolved.reference, platform))
    }

    /// Progress label and cache settings of a node made for `step`. The label is BuildKit's (dockerfile2llb's
    /// `prefixCommand`): `[stage i/n]`, without the stage in a one-stage Dockerfile, `i` padded to `n`'s width.
    pub(super) fn meta(&self, stage: &Stage, node: &Node, number: usize, total: usize) -> NodeMeta {
        let name = stage.display_name();
        let prefix = if self.stages.stages.len() == 1 { String::new() } else { format!("{name} ") };
        let width = total.to_string().len();
        NodeMeta {
            description: format!("[{prefix}{number:>width$}/{total}] {}", node.original.trim()),
            line: Some(node.span.start.line),
            ignore_cache: self.options.no_cache || self.options.no_cache_filter.contains(&name),
            stage: Some(name),
        }
    }

    /// Expands one word with `env`; errors point at `step`.
    pub(super) fn expand(&self, step: &Step, word: &str, env: &EnvMap) -> Result<String, Error> {
        expand(&self.lexer, &step.node, word, env)
    }

    fn image_node(&mut self, reference: &str, platform: &Platform) -> NodeId {
        let op = Op::Source(SourceOp::Image { reference: reference.to_owned(), platform: platform.clone() });
        // BuildKit names its own vertices `[internal] ...`.
        let meta = NodeMeta { description: format!("[internal] load metadata for {reference}"), ..Default::default() };
        self.graph.add(op, Vec::new(), meta)
    }

    fn lower_stage(&mut self, index: usize) -> Result<StageState, Error> {
        let stages = self.stages;
        let stage = &stages.stages[index];
        if let Some(context) = stage.name.as_deref().and_then(|name| self.named_context(name)) {
            // A named context replaces the stage of its name, instructions and all, as in BuildKit.
            let platform = self.stage_platform(stage)?;
            return self.context_state(context, stage, platform);
        }
        let mut state = self.start(stage)?;
        // Triggers of the base run first, once: the result no longer carries them.
        let triggers = match state.config.on_build.take() {
            Some(triggers) => parse_triggers(&triggers, &stage.from)?,
            None => Vec::new(),
        };
        let total = triggers.len() + stage.steps.len() + 1;
        for (i, step) in triggers.iter().chain(&stage.steps).enumerate() {
            let meta = self.meta(stage, &step.node, i + 2, total);
            self.dispatch(&mut state, stage, step, meta)?;
        }
        Ok(state)
    }

    /// The state right after FROM: a copy of an earlier stage, a named context, an image, or scratch.
    fn start(&mut self, stage: &Stage) -> Result<StageState, Error> {
        let base = expand(&self.lexer, &stage.from, &stage.base, &self.global_args)?;
        if base.is_empty() {
            return Err(stage.from.error(format!("base name ({}) should not be blank", stage.base)));
        }
        let platform = self.stage_platform(stage)?;
        if let StageRef::Stage(parent) = self.stages.resolve_base(stage.index, &base) {
            return self.stage_state(parent);
        }
        if let Some(context) = self.named_context(&base) {
            return self.context_state(context, stage, platform);
        }
        self.base_state(stage, &base, platform)
    }

    /// `FROM --platform`, or the target platform.
    fn stage_platform(&self, stage: &Stage) -> Result<Platform, Error> {
        match &stage.platform {
            Some(raw) => expand(&self.lexer, &stage.from, raw, &self.global_args)?
                .parse::<Platform>()
                .map_err(|e| stage.from.error(e)),
            None => Ok(self.options.target_platform.clone()),
        }
    }

    /// The state of a stage built on the image `base` (or scratch).
    pub(super) fn base_state(&mut self, stage: &Stage, base: &str, platform: Platform) -> Result<StageState, Error> {
        let mut state = StageState {
            root: None,
            env: EnvMap::new(),
            config: ImageConfig::default(),
            base: None,
            steps: Vec::new(),
            cmd_set: false,
            platform,
            args: Vec::new(),
        };
        if base.eq_ignore_ascii_case("scratch") {
            state.config.env = Some(vec![format!("PATH={DEFAULT_PATH}")]);
            state.config.working_dir = Some("/".into());
        } else {
            let resolved = self.resolver.resolve(base, &state.platform).map_err(|e| stage.from.error(e))?;
            let node = self.image_node(&resolved.reference, &state.platform);
            state.root = Some(node);
            state.base = Some(BaseImage { reference: resolved.reference, node });
            state.config = resolved.config;
        }
        for entry in state.config.env.iter().flatten() {
            let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
            state.env.insert(name, value);
        }
        Ok(state)
    }

    fn dispatch(&mut self, state: &mut StageState, stage: &Stage, step: &Step, meta: NodeMeta) -> Result<(), Error> {
        match &step.instruction {
            Instruction::Env(pairs) => {
                // Every substitution in one ENV sees the variables from before it.
                let before = state.env.clone();
                let mut written = Vec::new();
                for pair in pairs {
                    let name = self.expand(step, &pair.key, &before)?;
                    let value = self.expand(step, &pair.value, &before)?;
                    set_env(&mut state.config, &name, &value);
                    state.env.insert(name.clone(), value.clone());
                    written.push(format!("{name}={value}"));
                }
                state.record(format!("ENV {}", written.join(" ")), None);
            }
            Instruction::Label(pairs) => {
                let mut written = Vec::new();
                for pair in pairs {
                    let name = self.expand(step, &pair.key, &state.env)?;
                    let value = self.expand(step, &pair.value, &state.env)?;
                    written.push(format!("{name}={value}"));
                    state.config.labels.get_or_insert_with(Default::default).insert(name, value);
                }
                state.record(format!("LABEL {}", written.join(" ")), None);
            }
            Instruction::Arg(decls) => {
                let mut written = Vec::new();
                for decl in decls {
                    let value = match (self.options.build_args.get(&decl.name), &decl.default) {
                        (Some(given), _) => Some(given.clone()),
                        (None, Some(default)) => Some(self.expand(step, default, &state.env)?),
                        (None, None) => self.global_args.get(&decl.name).map(str::to_owned),
                    };
                    match &value {
                        Some(value) => {
                            state.env.insert(decl.name.clone(), value.clone());
                            written.push(format!("{}={value}", decl.name));
                        }
                        None => written.push(decl.name.clone()),
                    }
                    state.args.push((decl.name.clone(), value));
                }
                state.record(format!("ARG {}", written.join(" ")), None);
            }
            Instruction::Workdir(raw) => {
                let dir = self.expand(step, raw, &state.env)?;
                let path = if dir.starts_with('/') { clean(&dir) } else { clean(&format!("{}/{dir}", state.cwd())) };
                state.config.working_dir = Some(path.clone());
                let node = (path != "/").then(|| {
                    let action = FileAction::Mkdir {
                        path: path.clone(),
                        mode: 0o755,
                        make_parents: true,
                        chown: user_chown(state),
                    };
                    self.file_op(state, vec![action], meta)
                });
                if let Some(node) = node {
                    state.root = Some(node);
                }
                state.record(format!("WORKDIR {path}"), None);
                if let (Some(node), Some(last)) = (node, state.steps.last_mut()) {
                    // A created directory is a layer, but BuildKit writes no "# buildkit" marker for it.
                    last.node = Some(node);
                    last.history.empty_layer = false;
                }
            }
            Instruction::User(raw) => {
                let user = self.expand(step, raw, &state.env)?;
                state.record(format!("USER {user}"), None);
                state.config.user = Some(user);
            }
            Instruction::Cmd(command) => {
                let args = with_shell(&state.config, command);
                state.record(format!("CMD {}", quote_list(&args)), None);
                state.config.cmd = Some(args);
                state.cmd_set = true;
            }
            Instruction::Entrypoint(command) => {
                let args = with_shell(&state.config, command);
                state.record(format!("ENTRYPOINT {}", quote_list(&args)), None);
                state.config.entrypoint = Some(args);
                if !state.cmd_set {
                    state.config.cmd = None;
                }
            }
            Instruction::Shell(shell) => {
                state.record(format!("SHELL {}", quote_list(shell)), None);
                state.config.shell = Some(shell.clone());
            }
            Instruction::Expose(raw) => {
                let mut ports = Vec::new();
                for word in raw {
                    let words =
                        self.lexer.process_words(word, &state.env).map_err(|e| step.node.error(e.to_string()))?;
                    for spec in words {
                        ports.extend(exposed_ports(&spec).map_err(|e| step.node.error(e))?);
                    }
                }
                let exposed = state.config.exposed_ports.get_or_insert_with(Default::default);
                exposed.extend(ports.iter().map(|p| (p.clone(), Default::default())));
                state.record(format!("EXPOSE {}", ports.join(" ")), None);
            }
            Instruction::Volume(raw) => {
                let mut paths = Vec::new();
                for word in raw {
                    let path = self.expand(step, word, &state.env)?;
                    if path.trim().is_empty() {
                        return Err(step.node.error("VOLUME specified can not be an empty string"));
                    }
                    paths.push(path);
                }
                let volumes = state.config.volumes.get_or_insert_with(Default::default);
                volumes.extend(paths.iter().map(|p| (p.clone(), Default::default())));
                state.record(format!("VOLUME {}", quote_list(&paths)), None);
            }
            Instruction::Stopsignal(raw) => {
                let signal = self.expand(step, raw, &state.env)?;
                state.record(format!("STOPSIGNAL {signal}"), None);
                state.config.stop_signal = Some(signal);
            }
            Instruction::Healthcheck(check) => {
                let none = || HealthConfig { test: vec!["NONE".into()], ..Default::default() };
                state.config.healthcheck = Some(check.clone().unwrap_or_else(none));
                state.record(format!("HEALTHCHECK {}", step.node.original.trim()["HEALTHCHECK".len()..].trim()), None);
            }
            Instruction::Maintainer(name) => state.record(format!("MAINTAINER {name}"), None),
            Instruction::Onbuild { expression, .. } => {
                state.config.on_build.get_or_insert_with(Vec::new).push(expression.clone());
                state.record(format!("ONBUILD {expression}"), None);
            }
            Instruction::Run { .. } => self.dispatch_run(state, stage, step, meta)?,
            Instruction::Copy(copy) => self.dispatch_copy(state, stage, step, copy, false, meta)?,
            Instruction::Add(copy) => self.dispatch_copy(state, stage, step, copy, true, meta)?,
            Instruction::From { .. } => unreachable!("stages are split at FROM"),
        }
        Ok(())
    }

    /// Adds a file op over the stage's filesystem and returns it.
    pub(super) fn file_op(&mut self, state: &StageState, actions: Vec<FileAction>, meta: NodeMeta) -> NodeId {
        let inputs: Vec<NodeId> = state.root.into_iter().collect();
        let base = state.root.map(|_| 0);
        self.graph.add(Op::File(FileOp { base, actions }), inputs, meta)
    }
}

/// Expands one word with `env`; errors point at `node`.
fn expand(lexer: &Lexer, node: &Node, word: &str, env: &EnvMap) -> Result<String, Error> {
    lexer.process_word(word, env).map(|e| e.value).map_err(|e| node.error(e.to_string()))
}

/// The ONBUILD triggers of a base image as steps; errors point at the FROM that brought them in.
fn parse_triggers(triggers: &[String], from: &Node) -> Result<Vec<Step>, Error> {
    let mut steps = Vec::new();
    for trigger in triggers {
        let ast = parse(trigger, "ONBUILD trigger")
            .map_err(|e| from.error(format!("invalid ONBUILD trigger {trigger:?} in base image: {}", e.message())))?;
        for node in &ast.nodes {
            steps.push(Step::new(node)?);
        }
    }
    Ok(steps)
}

/// Sets `name` in the config's `Env`, replacing an earlier value in place.
fn set_env(config: &mut ImageConfig, name: &str, value: &str) {
    let env = config.env.get_or_insert_with(Vec::new);
    let entry = format!("{name}={value}");
    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == name) {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// A command as the image config stores it: exec form as is, shell form through the SHELL in effect.
pub(super) fn with_shell(config: &ImageConfig, command: &Command) -> Vec<String> {
    match command {
        Command::Exec(args) => args.clone(),
        Command::Shell(line) => {
            let mut args = config.shell.clone().unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            args.push(line.clone());
            args
        }
    }
}

/// The current USER as the owner of files a step creates, or `None` for root.
pub(super) fn user_chown(state: &StageState) -> Option<Chown> {
    let user = state.config.user.as_deref().filter(|u| !u.is_empty())?;
    let (user, group) = match user.split_once(':') {
        Some((user, group)) => (user, Some(group.to_owned())),
        None => (user, None),
    };
    Some(Chown { user: user.to_owned(), group })
}

/// Go's `%q` of a string slice, as BuildKit writes lists into history: `["a" "b"]`.
fn quote_list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| go_quote(i)).collect::<Vec<_>>().join(" "))
}
