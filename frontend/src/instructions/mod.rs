//! Typed instructions built from parser nodes, with BuildKit's flag and argument validation.
//! Values stay unexpanded: the lowering expands them with the stage's environment.

mod copy;
mod flags;
mod healthcheck;
mod mount;

pub use copy::CopyArgs;
pub use healthcheck::go_duration_nanos;
pub(crate) use mount::raw_from;
pub use mount::{MountSpec, MountType, parse_mount};

use crate::error::Error;
use crate::parser::{Heredoc, Node};
use crate::suggest::with_suggestion;
use copy::{CopyKind, parse_copy};
use flags::{FlagKind, FlagSpecs, Flags};
use healthcheck::parse_healthcheck;

/// A command in exec form (JSON array) or shell form (run through the stage's SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["executable", "arg"...]`.
    Exec(Vec<String>),
    /// A command line for the shell.
    Shell(String),
}

/// One `key=value` (or legacy `key value`) pair of ENV or LABEL, value still quoted as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The variable or label name.
    pub key: String,
    /// The raw value, to be expanded by the lowering.
    pub value: String,
}

/// One name of an ARG instruction with its optional raw default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The build argument's name.
    pub name: String,
    /// The default after `=`, unexpanded; `None` when there is no `=`.
    pub default: Option<String>,
}

/// A Dockerfile instruction with validated flags and unexpanded values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM [--platform=p] image [AS name]`; the stage name is lower-cased.
    From { image: String, platform: Option<String>, name: Option<String> },
    /// `RUN [--mount=...] [--network=...] [--security=...] command`; mounts are raw (parse with [`parse_mount`] after expansion).
    Run { cmd: Command, mounts: Vec<String>, network: Option<String>, security: Option<String>, heredocs: Vec<Heredoc> },
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `SHELL ["executable", "arg"...]`.
    Shell(Vec<String>),
    /// `LABEL key=value...`.
    Label(Vec<KeyValue>),
    /// `MAINTAINER name`.
    Maintainer(String),
    /// `EXPOSE port[/proto]...`.
    Expose(Vec<String>),
    /// `ENV key=value...`.
    Env(Vec<KeyValue>),
    /// `ARG name[=default]...`.
    Arg(Vec<ArgDecl>),
    /// `COPY`.
    Copy(CopyArgs),
    /// `ADD`.
    Add(CopyArgs),
    /// `VOLUME path...`.
    Volume(Vec<String>),
    /// `USER user[:group]`.
    User(String),
    /// `WORKDIR path`.
    Workdir(String),
    /// `ONBUILD instruction`: the parsed trigger and its text (heredoc bodies appended) to store in the image.
    Onbuild { trigger: Box<Instruction>, expression: String },
    /// `STOPSIGNAL signal`.
    Stopsignal(String),
    /// `HEALTHCHECK`; `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<strata_llb::HealthConfig>),
}

/// Every instruction keyword, for "did you mean" hints.
const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions that take no flags.
const NO_FLAGS: FlagSpecs = &[];

/// Builds the typed instruction for `node`; errors point at the node's line.
pub fn parse_instruction(node: &Node) -> Result<Instruction, Error> {
    typed(node).map_err(|message| node.error(message))
}

fn typed(node: &Node) -> Result<Instruction, String> {
    let args = &node.args;
    let no_flags = || Flags::parse(&node.flags, NO_FLAGS).map(drop);
    Ok(match node.keyword.as_str() {
        "from" => parse_from(node)?,
        "run" => parse_run(node)?,
        "cmd" => {
            no_flags()?;
            Instruction::Cmd(command(node))
        }
        "entrypoint" => {
            no_flags()?;
            Instruction::Entrypoint(command(node))
        }
        "shell" => {
            no_flags()?;
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            if args.is_empty() {
                return Err("SHELL requires at least one argument".into());
            }
            Instruction::Shell(args.clone())
        }
        "env" => {
            no_flags()?;
            Instruction::Env(key_values(args, "ENV")?)
        }
        "label" => {
            no_flags()?;
            Instruction::Label(key_values(args, "LABEL")?)
        }
        "maintainer" => Instruction::Maintainer(exactly_one(node, "MAINTAINER")?),
        "user" => Instruction::User(exactly_one(node, "USER")?),
        "workdir" => Instruction::Workdir(exactly_one(node, "WORKDIR")?),
        "stopsignal" => Instruction::Stopsignal(exactly_one(node, "STOPSIGNAL")?),
        "expose" => Instruction::Expose(at_least_one(node, "EXPOSE")?),
        "volume" => {
            let volumes = at_least_one(node, "VOLUME")?;
            if volumes.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Instruction::Volume(volumes)
        }
        "arg" => {
            no_flags()?;
            Instruction::Arg(arg_decls(args)?)
        }
        "copy" => Instruction::Copy(parse_copy(node, CopyKind::Copy)?),
        "add" => Instruction::Add(parse_copy(node, CopyKind::Add)?),
        "onbuild" => parse_onbuild(node)?,
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        _ => {
            let written = node.original.split_whitespace().next().unwrap_or_default();
            return Err(with_suggestion(format!("unknown instruction: {written}"), written, &INSTRUCTIONS));
        }
    })
}

/// FROM's image, `--platform`, and optional `AS name`.
fn parse_from(node: &Node) -> Result<Instruction, String> {
    let flags = Flags::parse(&node.flags, &[("platform", FlagKind::String)])?;
    let (image, name) = match node.args.as_slice() {
        [image] => (image, None),
        [image, keyword, name] if keyword.eq_ignore_ascii_case("as") => {
            let name = name.to_lowercase();
            let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(format!(
                    "invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"
                ));
            }
            (image, Some(name))
        }
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    Ok(Instruction::From { image: image.clone(), platform: flags.string("platform"), name })
}

/// RUN's command and flags.
fn parse_run(node: &Node) -> Result<Instruction, String> {
    let flags = Flags::parse(
        &node.flags,
        &[("mount", FlagKind::Strings), ("network", FlagKind::String), ("security", FlagKind::String)],
    )?;
    let mounts = flags.strings("mount");
    for raw in &mounts {
        mount::check_from_is_literal(raw)?;
    }
    let network = flags.string("network");
    if let Some(mode) = network.as_deref().filter(|mode| !matches!(*mode, "default" | "none" | "host")) {
        return Err(format!("network mode \"{mode}\" not supported by buildkit"));
    }
    let security = flags.string("security");
    if let Some(mode) = security.as_deref().filter(|mode| !matches!(*mode, "sandbox" | "insecure")) {
        return Err(format!("security mode \"{mode}\" not supported by buildkit"));
    }
    let heredocs = node.heredocs.iter().map(|doc| Heredoc { content: doc.body(), ..doc.clone() }).collect();
    Ok(Instruction::Run { cmd: command(node), mounts, network, security, heredocs })
}

/// ONBUILD's trigger: any instruction except ONBUILD, FROM and MAINTAINER.
fn parse_onbuild(node: &Node) -> Result<Instruction, String> {
    Flags::parse(&node.flags, NO_FLAGS)?;
    let Some(next) = node.next.as_deref() else {
        return Err("ONBUILD requires at least one argument".into());
    };
    match next.keyword.as_str() {
        "onbuild" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "from" | "maintainer" => {
            return Err(format!("{} isn't allowed as an ONBUILD trigger", next.keyword.to_uppercase()));
        }
        _ => {}
    }
    // Heredocs hang off the ONBUILD node; the trigger needs them to know its sources and script.
    let trigger_node = Node { heredocs: node.heredocs.clone(), ..next.clone() };
    let trigger = typed(&trigger_node)?;
    let mut expression = next.original.trim().to_owned();
    for doc in &node.heredocs {
        expression.push('\n');
        expression.push_str(&doc.content);
        expression.push_str(&doc.name);
    }
    Ok(Instruction::Onbuild { trigger: Box::new(trigger), expression })
}

/// CMD/ENTRYPOINT/RUN: exec form from a JSON array, otherwise the shell command line.
fn command(node: &Node) -> Command {
    if node.json { Command::Exec(node.args.clone()) } else { Command::Shell(node.args.join(" ")) }
}

/// The single argument of MAINTAINER, USER, WORKDIR and STOPSIGNAL.
fn exactly_one(node: &Node, instruction: &str) -> Result<String, String> {
    Flags::parse(&node.flags, NO_FLAGS)?;
    match node.args.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(format!("{instruction} requires exactly one argument")),
    }
}

/// The arguments of EXPOSE and VOLUME.
fn at_least_one(node: &Node, instruction: &str) -> Result<Vec<String>, String> {
    Flags::parse(&node.flags, NO_FLAGS)?;
    if node.args.is_empty() {
        return Err(format!("{instruction} requires at least one argument"));
    }
    Ok(node.args.clone())
}

/// ENV/LABEL nodes come in threes: key, value, separator.
fn key_values(args: &[String], instruction: &str) -> Result<Vec<KeyValue>, String> {
    if args.is_empty() {
        return Err(format!("{instruction} requires at least one argument"));
    }
    args.chunks(3)
        .map(|triple| match triple {
            [key, _, _] if key.is_empty() => Err(format!("{instruction} names can not be blank")),
            [key, value, _] => Ok(KeyValue { key: key.clone(), value: value.clone() }),
            _ => Err(format!("Bad input to {instruction}, too many arguments")),
        })
        .collect()
}

/// ARG words: `name` or `name=default`.
fn arg_decls(args: &[String]) -> Result<Vec<ArgDecl>, String> {
    if args.is_empty() {
        return Err("ARG requires at least one argument".into());
    }
    args.iter()
        .map(|word| {
            let (name, default) = match word.split_once('=') {
                Some((name, default)) => (name, Some(default.to_owned())),
                None => (word.as_str(), None),
            };
            if name.is_empty() {
                return Err("ARG names can not be blank".to_owned());
            }
            Ok(ArgDecl { name: name.to_owned(), default })
        })
        .collect()
}

#[cfg(test)]
mod tests;
