//! A Dockerfile as stages: the global ARGs before the first FROM, then one stage per FROM with its
//! instructions, and the references between stages that decide what a target needs.

use super::outline::comment_above;
use crate::error::Error;
use crate::instructions::{Instruction, parse_instruction, raw_from};
use crate::parser::{Ast, Node};
use crate::suggest::with_suggestion;

/// One instruction with the node it came from (for errors, history and source lines).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// The parsed node.
    pub node: Node,
    /// The typed instruction.
    pub instruction: Instruction,
}

impl Step {
    /// Types a node.
    pub fn new(node: &Node) -> Result<Self, Error> {
        Ok(Self { instruction: parse_instruction(node)?, node: node.clone() })
    }
}

/// A build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    /// Position among the stages, from 0.
    pub index: usize,
    /// `AS` name, lower-cased.
    pub name: Option<String>,
    /// The FROM image or stage name, unexpanded.
    pub base: String,
    /// `FROM --platform`, unexpanded.
    pub platform: Option<String>,
    /// The FROM node.
    pub from: Node,
    /// The instructions after FROM.
    pub steps: Vec<Step>,
    /// The comment lines directly above FROM, which `--call targets` shows as the description.
    pub description: String,
}

impl Stage {
    /// The name progress output uses: the `AS` name or `stage-N`.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// What a `--from` or `FROM` word refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StageRef {
    /// A stage of this Dockerfile.
    Stage(usize),
    /// Not a stage: an image reference.
    Image,
}

/// A Dockerfile split into global ARGs and stages.
#[derive(Debug, Clone)]
pub(crate) struct Stages {
    /// ARG instructions before the first FROM.
    pub global_args: Vec<Step>,
    /// The stages in source order.
    pub stages: Vec<Stage>,
    /// The last line holding a parser directive (0 when there is none).
    pub directive_lines: u32,
}

impl Stages {
    /// Types every instruction and groups them by stage; only ARG may come before the first FROM.
    pub fn split(ast: &Ast) -> Result<Self, Error> {
        let directive_lines = ast.directives.iter().map(|d| d.span.end.line).max().unwrap_or(0);
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &ast.nodes {
            let step = Step::new(node)?;
            match (&step.instruction, stages.last_mut()) {
                (Instruction::From { image, platform, name }, _) => stages.push(Stage {
                    index: stages.len(),
                    name: name.clone(),
                    base: image.clone(),
                    platform: platform.clone(),
                    description: comment_above(node, directive_lines),
                    from: step.node,
                    steps: Vec::new(),
                }),
                (_, Some(stage)) => stage.steps.push(step),
                (Instruction::Arg(_), None) => global_args.push(step),
                (_, None) => return Err(node.error("no build stage in current context")),
            }
        }
        if stages.is_empty() {
            return Err(Error::Build { message: "dockerfile contains no stages to build".into() });
        }
        let split = Self { global_args, stages, directive_lines };
        split.check_unique_names()?;
        Ok(split)
    }

    /// The stage a `--from` value names: a stage name (any case) or index, else an image.
    pub fn resolve_from(&self, word: &str) -> StageRef {
        let lower = word.to_lowercase();
        if let Some(stage) = self.stages.iter().find(|s| s.name.as_deref() == Some(lower.as_str())) {
            return StageRef::Stage(stage.index);
        }
        match word.parse::<usize>() {
            Ok(index) if index < self.stages.len() => StageRef::Stage(index),
            _ => StageRef::Image,
        }
    }

    /// The stage `FROM word` of stage `index` builds on: only an earlier stage's name counts.
    pub fn resolve_base(&self, index: usize, word: &str) -> StageRef {
        let lower = word.to_lowercase();
        self.stages[..index]
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map_or(StageRef::Image, |s| StageRef::Stage(s.index))
    }

    /// The target stage: by name (any case), or the last stage.
    pub fn target(&self, name: Option<&str>) -> Result<usize, Error> {
        let Some(name) = name.filter(|n| !n.is_empty()) else { return Ok(self.stages.len() - 1) };
        let lower = name.to_lowercase();
        if let Some(stage) = self.stages.iter().find(|s| s.name.as_deref() == Some(lower.as_str())) {
            return Ok(stage.index);
        }
        let names: Vec<&str> = self.stages.iter().filter_map(|s| s.name.as_deref()).collect();
        Err(Error::Build {
            message: with_suggestion(format!("target stage \"{name}\" could not be found"), name, &names),
        })
    }

    /// Fails when stages depend on each other in a cycle, naming the stage the search started from, as
    /// BuildKit does.
    pub fn check_cycles(&self) -> Result<(), Error> {
        let deps: Vec<Vec<usize>> = self.stages.iter().map(|s| self.dependencies(s)).collect();
        let mut visited = vec![false; deps.len()];
        for start in 0..deps.len() {
            let mut on_path = vec![false; deps.len()];
            if visit(start, &deps, &mut visited, &mut on_path) {
                let name = self.stages[start].display_name();
                return Err(Error::Build { message: format!("circular dependency detected on stage: {name}") });
            }
        }
        Ok(())
    }

    /// The stages `target` needs, itself included, in index order.
    pub fn reachable(&self, target: usize) -> Vec<usize> {
        let mut needed = vec![false; self.stages.len()];
        let mut stack = vec![target];
        while let Some(index) = stack.pop() {
            if !std::mem::replace(&mut needed[index], true) {
                stack.extend(self.dependencies(&self.stages[index]));
            }
        }
        (0..needed.len()).filter(|&i| needed[i]).collect()
    }

    /// The stages a stage reads from syntactically: its base, `COPY --from` and `RUN --mount from=`.
    fn dependencies(&self, stage: &Stage) -> Vec<usize> {
        let mut deps = Vec::new();
        if let StageRef::Stage(base) = self.resolve_base(stage.index, &stage.base) {
            deps.push(base);
        }
        for step in &stage.steps {
            let words: Vec<String> = match &step.instruction {
                Instruction::Copy(copy) | Instruction::Add(copy) => copy.from.iter().cloned().collect(),
                Instruction::Run { mounts, .. } => mounts.iter().filter_map(|m| raw_from(m)).collect(),
                _ => Vec::new(),
            };
            deps.extend(words.iter().filter_map(|w| match self.resolve_from(w) {
                StageRef::Stage(index) => Some(index),
                StageRef::Image => None,
            }));
        }
        deps
    }

    fn check_unique_names(&self) -> Result<(), Error> {
        for (i, stage) in self.stages.iter().enumerate() {
            let Some(name) = &stage.name else { continue };
            if self.stages[..i].iter().any(|s| s.name.as_ref() == Some(name)) {
                return Err(stage.from.error(format!("duplicate stage name \"{name}\"")));
            }
        }
        Ok(())
    }
}

fn visit(stage: usize, deps: &[Vec<usize>], visited: &mut [bool], on_path: &mut [bool]) -> bool {
    if std::mem::replace(&mut visited[stage], true) {
        return false;
    }
    on_path[stage] = true;
    for &dep in &deps[stage] {
        if on_path[dep] || visit(dep, deps, visited, on_path) {
            return true;
        }
    }
    on_path[stage] = false;
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn stages(text: &str) -> Result<Stages, Error> {
        Stages::split(&parse(text, "Dockerfile")?)
    }

    #[test]
    fn splits_global_args_and_stages_with_descriptions() {
        let s =
            stages("# syntax=x\n# builds the app\n# fast\nFROM busybox AS Build\nRUN true\nFROM scratch\n").unwrap();
        assert_eq!(s.stages.len(), 2);
        assert_eq!(s.stages[0].name.as_deref(), Some("build"));
        assert_eq!(s.stages[0].description, "builds the app fast");
        assert_eq!(s.stages[0].steps.len(), 1);
        assert_eq!(s.target(Some("BUILD")).unwrap(), 0);
        assert_eq!(s.target(None).unwrap(), 1);
    }

    #[test]
    fn target_typo_suggests_a_stage() {
        let s = stages("FROM scratch AS build\nFROM scratch\n").unwrap();
        let err = s.target(Some("bulid")).unwrap_err().to_string();
        assert_eq!(err, "target stage \"bulid\" could not be found (did you mean build?)");
    }

    #[test]
    fn no_stages_and_instruction_before_from() {
        assert_eq!(stages("ARG foo=bar").unwrap_err().to_string(), "dockerfile contains no stages to build");
        assert!(stages("RUN true\nFROM scratch\n").unwrap_err().to_string().contains("no build stage"));
    }

    #[test]
    fn cycles_name_the_first_stage() {
        let s = stages(
            "FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\nCOPY --from=stage0 f2 /sub/\n\
             FROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n",
        )
        .unwrap();
        assert_eq!(s.check_cycles().unwrap_err().to_string(), "circular dependency detected on stage: stage0");
        let s = stages("FROM busybox AS stage0\nRUN --mount=from=stage0,target=/x true\n").unwrap();
        assert!(s.check_cycles().is_err());
        stages("FROM busybox AS a\nFROM a AS b\nCOPY --from=a / /\n").unwrap().check_cycles().unwrap();
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let err = stages("FROM scratch AS a\nFROM scratch AS A\n").unwrap_err().to_string();
        assert!(err.contains("duplicate stage name \"a\""), "{err}");
        assert!(err.starts_with("Dockerfile:2:1"), "{err}");
    }

    #[test]
    fn from_references() {
        let s = stages("FROM scratch AS a\nFROM a AS b\n").unwrap();
        assert_eq!(s.resolve_from("A"), StageRef::Stage(0));
        assert_eq!(s.resolve_from("1"), StageRef::Stage(1));
        assert_eq!(s.resolve_from("7"), StageRef::Image);
        assert_eq!(s.resolve_from("busybox"), StageRef::Image);
        assert_eq!(s.resolve_base(1, "a"), StageRef::Stage(0));
        assert_eq!(s.resolve_base(0, "b"), StageRef::Image);
    }
}
