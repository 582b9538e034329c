//! The syntax tree: one [`Node`] per instruction, mirroring BuildKit's `parser.Node`.
//!
//! The JSON form (`strata parse --format json`) is the serde serialization of these types, with these
//! field names: `Ast { file, directives, escape, nodes, warnings, span }`,
//! `Directive { name, value, span }`, `Node { keyword, flags, args, json, heredocs, next, original, span }`,
//! `Heredoc { name, content, expand, chomp }`, `Warning { message, span }`,
//! `Span { start, end }` and `Pos { line, column }`. `next` is `null` except for ONBUILD.

use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, SourceFile};

/// A 1-based position in the Dockerfile; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pos {
    /// 1-based physical line.
    pub line: u32,
    /// 1-based column in characters.
    pub column: u32,
}

/// A source range; `end` is on the last physical line (continuations and heredoc bodies included), one past its last character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Where the range starts.
    pub start: Pos,
    /// One past the last character of the range's last physical line.
    pub end: Pos,
}

/// A parser directive (`# syntax=...`, `# escape=...`, `# check=...`) from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// The key, lower-cased.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// The directive's line.
    pub span: Span,
}

/// A heredoc attached to a RUN, COPY or ADD instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF` for `<<"EOF"`); COPY uses it as the file name.
    pub name: String,
    /// The body exactly as written, line endings included; leading tabs are not yet stripped for `<<-`.
    pub content: String,
    /// False when any part of the delimiter was quoted: the body then gets no variable expansion.
    pub expand: bool,
    /// True for `<<-`: leading tabs of body lines are to be removed.
    pub chomp: bool,
}

impl Heredoc {
    /// The body as the instruction uses it: with `<<-`, leading tabs removed from every line.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content.split_inclusive('\n').map(|line| line.trim_start_matches('\t')).collect()
    }
}

/// A non-fatal finding, such as an empty line inside a continued instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// What was found, in BuildKit's words.
    pub message: String,
    /// The instruction the warning is about.
    pub span: Span,
}

/// One instruction as BuildKit's parser sees it: keyword, flags and argument nodes, not yet typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The instruction word, lower-cased.
    pub keyword: String,
    /// Leading `--flag` words with quotes removed, e.g. `--mount=type=cache,target=/x`.
    pub flags: Vec<String>,
    /// BuildKit's argument nodes; how they are split depends on the instruction (see the conformance README).
    pub args: Vec<String>,
    /// True when the arguments were a JSON array (exec form).
    pub json: bool,
    /// Heredoc bodies, in the order their markers appear on the line.
    pub heredocs: Vec<Heredoc>,
    /// ONBUILD's nested instruction.
    pub next: Option<Box<Node>>,
    /// The logical line: continuation lines joined, comments and empty lines dropped, heredoc bodies excluded.
    pub original: String,
    /// From the keyword to the end of the last physical line.
    pub span: Span,
    /// The file the node came from, for error messages.
    #[serde(skip)]
    pub source: Arc<SourceFile>,
}

impl Node {
    /// An error pointing at this instruction's keyword, for problems found after parsing (arguments, expansion).
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Instruction {
            at: self.source.locate(self.span.start.line, self.span.start.column),
            message: message.into(),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ast {
    /// The file name given to the parser.
    pub file: String,
    /// The parser directives at the top of the file, in order.
    pub directives: Vec<Directive>,
    /// The escape character: `\` unless `# escape=` chose `` ` ``.
    pub escape: char,
    /// The instructions, in source order.
    pub nodes: Vec<Node>,
    /// Non-fatal findings.
    pub warnings: Vec<Warning>,
    /// From the first instruction to the end of the last one.
    pub span: Span,
}

impl Ast {
    /// The value of directive `name` (lower-case), if the file sets it.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives.iter().find(|d| d.name == name).map(|d| d.value.as_str())
    }

    /// The stable JSON form documented in this module.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the syntax tree holds only strings, numbers and booleans")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chomped_body_loses_leading_tabs_per_line() {
        let doc = Heredoc { name: "EOF".into(), content: "\t\tа\n\tb\t\n".into(), expand: true, chomp: true };
        assert_eq!(doc.body(), "а\nb\t\n");
        assert_eq!(Heredoc { chomp: false, ..doc.clone() }.body(), doc.content);
    }
}
