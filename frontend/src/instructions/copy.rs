//! COPY and ADD: sources, destination, heredoc sources, and their flags.

use super::flags::{FlagKind, FlagSpecs, Flags};
use crate::parser::heredoc::marker;
use crate::parser::{Heredoc, Node};

/// The flags COPY accepts.
const COPY_FLAGS: FlagSpecs = &[
    ("chown", FlagKind::String),
    ("chmod", FlagKind::String),
    ("from", FlagKind::String),
    ("link", FlagKind::Bool),
    ("parents", FlagKind::Bool),
    ("exclude", FlagKind::Strings),
];

/// The flags ADD accepts.
const ADD_FLAGS: FlagSpecs = &[
    ("chown", FlagKind::String),
    ("chmod", FlagKind::String),
    ("link", FlagKind::Bool),
    ("keep-git-dir", FlagKind::Bool),
    ("checksum", FlagKind::String),
    ("exclude", FlagKind::Strings),
    ("unpack", FlagKind::Bool),
];

/// The arguments of COPY or ADD, unexpanded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Source paths (or URLs for ADD), heredoc markers excluded.
    pub sources: Vec<String>,
    /// The destination path.
    pub dest: String,
    /// `--from`: a stage name, index or image (COPY only).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`: copy into an independent layer.
    pub link: bool,
    /// `--parents`: keep the source's parent directories (COPY only).
    pub parents: bool,
    /// `--exclude` patterns, in order.
    pub exclude: Vec<String>,
    /// `--checksum` of a remote source (ADD only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` for Git sources (ADD only).
    pub keep_git_dir: bool,
    /// `--unpack`: force (true) or prevent (false) archive extraction (ADD only); `None` means auto.
    pub unpack: Option<bool>,
    /// Heredoc sources, each written to a file named after its delimiter; `<<-` tabs already stripped from `content`.
    pub heredocs: Vec<Heredoc>,
}

/// Which of the two instructions is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CopyKind {
    /// COPY.
    Copy,
    /// ADD.
    Add,
}

/// Parses COPY or ADD arguments and flags.
pub(super) fn parse_copy(node: &Node, kind: CopyKind) -> Result<CopyArgs, String> {
    let (instruction, specs) = match kind {
        CopyKind::Copy => ("COPY", COPY_FLAGS),
        CopyKind::Add => ("ADD", ADD_FLAGS),
    };
    let Some((dest, sources)) = node.args.split_last().filter(|(_, sources)| !sources.is_empty()) else {
        return Err(format!(
            "{instruction} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    };
    let flags = Flags::parse(&node.flags, specs)?;
    // JSON-form arguments are literal file names, never heredoc markers.
    let is_marker = |word: &str| !node.json && marker(word).is_some();
    if is_marker(dest) {
        return Err(format!("{instruction} cannot accept a heredoc as a destination"));
    }
    let mut args = CopyArgs {
        dest: dest.clone(),
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link").unwrap_or(false),
        parents: flags.bool("parents").unwrap_or(false),
        exclude: flags.strings("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir").unwrap_or(false),
        unpack: flags.bool("unpack"),
        ..CopyArgs::default()
    };
    for source in sources {
        match marker(source).filter(|_| is_marker(source)) {
            Some(found) => {
                let body =
                    node.heredocs.iter().find(|doc| doc.name == found.name).map(Heredoc::body).unwrap_or_default();
                args.heredocs.push(Heredoc {
                    name: found.name,
                    content: body,
                    expand: found.expand,
                    chomp: found.chomp,
                });
            }
            None => args.sources.push(source.clone()),
        }
    }
    Ok(args)
}
