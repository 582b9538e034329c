//! `strata build --call targets|outline`: what a Dockerfile offers, without building or resolving anything.

use serde::Serialize;

use super::LowerOptions;
use super::stages::{Stages, Step};
use crate::error::Error;
use crate::instructions::{Instruction, MountType, parse_mount};
use crate::parser::{Ast, Node};

/// A stage as `--call targets` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageSummary {
    /// The stage name; unnamed stages are listed only as the default target, named `(default)`.
    pub name: String,
    /// The comment above its FROM.
    pub description: String,
    /// The FROM image or stage, as written.
    pub base: String,
    /// True for the stage built when no `--target` is given.
    pub default: bool,
    /// The FROM line.
    pub line: u32,
}

/// What building a target uses, as `--call outline` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outline {
    /// The target stage name, or `(default)`.
    pub target: String,
    /// The comment above the target's FROM.
    pub description: String,
    /// Build args the target reads, with their values.
    pub args: Vec<OutlineArg>,
    /// Secrets the target's RUN steps mount.
    pub secrets: Vec<OutlineSecret>,
    /// SSH agents the target's RUN steps forward.
    pub ssh: Vec<OutlineSecret>,
}

/// A build arg in an outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineArg {
    /// Its name.
    pub name: String,
    /// The value given with `--build-arg`, else the default as written; `None` when neither exists.
    pub value: Option<String>,
    /// The comment above its ARG.
    pub description: String,
    /// The ARG line.
    pub line: u32,
}

/// A secret or SSH id in an outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineSecret {
    /// The id the build asks the client for.
    pub id: String,
    /// Whether the build fails without it.
    pub required: bool,
    /// The RUN line that uses it.
    pub line: u32,
}

/// The stages a user can pass to `--target`, plus the default.
pub fn targets(ast: &Ast) -> Result<Vec<StageSummary>, Error> {
    let stages = Stages::split(ast)?;
    let last = stages.stages.len() - 1;
    Ok(stages
        .stages
        .iter()
        .filter(|s| s.name.is_some() || s.index == last)
        .map(|s| StageSummary {
            name: s.name.clone().unwrap_or_else(|| "(default)".into()),
            description: s.description.clone(),
            base: s.base.clone(),
            default: s.index == last,
            line: s.from.span.start.line,
        })
        .collect())
}

/// The build args, secrets and SSH ids the target (and the stages it needs) use.
pub fn outline(ast: &Ast, options: &LowerOptions) -> Result<Outline, Error> {
    let stages = Stages::split(ast)?;
    stages.check_cycles()?;
    let target = stages.target(options.target.as_deref())?;
    let mut outline = Outline {
        target: stages.stages[target].name.clone().unwrap_or_else(|| "(default)".into()),
        description: stages.stages[target].description.clone(),
        args: Vec::new(),
        secrets: Vec::new(),
        ssh: Vec::new(),
    };
    let reachable = stages.reachable(target);
    let steps = || reachable.iter().flat_map(|&i| stages.stages[i].steps.iter());
    let global_used = |name: &str| {
        let reference = |text: &str| text.contains(&format!("${name}")) || text.contains(&format!("${{{name}"));
        reachable.iter().any(|&i| reference(&stages.stages[i].from.original))
            || steps().any(|s| matches!(&s.instruction, Instruction::Arg(d) if d.iter().any(|d| d.name == name)))
    };
    for step in stages.global_args.iter().chain(steps()) {
        let Instruction::Arg(decls) = &step.instruction else { continue };
        let global = stages.global_args.iter().any(|g| std::ptr::eq(g, step));
        for decl in decls.iter().filter(|d| !global || global_used(&d.name)) {
            if outline.args.iter().any(|a| a.name == decl.name) {
                continue;
            }
            outline.args.push(OutlineArg {
                name: decl.name.clone(),
                value: options.build_args.get(&decl.name).cloned().or_else(|| decl.default.clone()),
                description: comment_above(&step.node, stages.directive_lines),
                line: step.node.span.start.line,
            });
        }
    }
    for step in steps() {
        collect_mounts(step, &mut outline);
    }
    Ok(outline)
}

fn collect_mounts(step: &Step, outline: &mut Outline) {
    let Instruction::Run { mounts, .. } = &step.instruction else { return };
    for spec in mounts.iter().filter_map(|raw| parse_mount(raw).ok()) {
        let line = step.node.span.start.line;
        let id = spec.id.clone().unwrap_or_else(|| "default".into());
        let list = match spec.kind {
            MountType::Secret => &mut outline.secrets,
            MountType::Ssh => &mut outline.ssh,
            _ => continue,
        };
        if !list.iter().any(|s| s.id == id) {
            list.push(OutlineSecret { id, required: spec.required, line });
        }
    }
}

/// The `#` comment lines directly above a node, without the `#`, joined by spaces. Lines up to `floor`
/// (the parser directives) are not comments.
pub(super) fn comment_above(node: &Node, floor: u32) -> String {
    let mut lines = Vec::new();
    let mut line = node.span.start.line;
    while line > floor + 1 {
        line -= 1;
        let Some(comment) = node.source.line(line).trim().strip_prefix('#') else { break };
        lines.push(comment.trim().to_owned());
    }
    lines.reverse();
    lines.join(" ")
}
