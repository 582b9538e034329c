//! BuildKit's Dockerfile parser: directives, comments, line continuations, heredocs, and per-instruction
//! argument splitting into a [`Node`] per instruction.

mod args;
mod ast;
mod directives;
mod dump;
mod flags;
pub(crate) mod heredoc;
mod lines;

use std::sync::Arc;

pub use ast::{Ast, Directive, Heredoc, Node, Pos, Span, Warning};
pub use dump::go_quote;

use crate::error::{Error, SourceFile};
use directives::{DirectiveLine, DirectiveScanner};
use lines::{PhysicalLine, is_comment, physical_lines, trim_continuation};

/// Instructions whose lines may carry heredoc markers.
const HEREDOC_INSTRUCTIONS: [&str; 3] = ["run", "copy", "add"];

/// Parses a Dockerfile. `file_name` is used in error messages and recorded in the [`Ast`].
pub fn parse(source: &str, file_name: &str) -> Result<Ast, Error> {
    let file = SourceFile::new(file_name, source);
    let lines = physical_lines(source);
    let mut reader = Reader { file: &file, lines: &lines, next: 0, escape: '\\' };
    let mut directives = Vec::new();
    let mut scanner = DirectiveScanner::default();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    while let Some(line) = reader.advance() {
        let text = line.text.trim_start();
        match scanner.observe(text).map_err(|message| reader.syntax_error(line.number, 1, message))? {
            DirectiveLine::Directive { name, value } => {
                if name == "escape" {
                    reader.escape = value.chars().next().expect("validated to be ` or \\");
                }
                let span = line_span(line.number, 1, line.text);
                directives.push(Directive { name, value, span });
                continue;
            }
            DirectiveLine::Other => {}
        }
        if is_comment(text) || text.is_empty() {
            continue;
        }
        let (node, empty_continuation) = reader.instruction(line)?;
        if empty_continuation {
            warnings.push(Warning {
                message: format!("Empty continuation line found in: {}", node.original),
                span: node.span,
            });
        }
        nodes.push(node);
    }
    let (Some(first), Some(last)) = (nodes.first(), nodes.last()) else {
        let line = u32::try_from(lines.len()).unwrap_or(u32::MAX).max(1);
        return Err(reader.syntax_error(line, 1, "file with no instructions".into()));
    };
    let span = Span { start: first.span.start, end: last.span.end };
    Ok(Ast { file: file_name.to_owned(), directives, escape: reader.escape, nodes, warnings, span })
}

/// A span covering `text` on line `line`, starting at `column`.
fn line_span(line: u32, column: u32, text: &str) -> Span {
    Span { start: Pos { line, column }, end: Pos { line, column: char_count(text) + 1 } }
}

/// The length of `text` in characters, as a column offset.
fn char_count(text: &str) -> u32 {
    u32::try_from(text.chars().count()).unwrap_or(u32::MAX)
}

/// Walks the physical lines, assembling instructions.
struct Reader<'a> {
    file: &'a Arc<SourceFile>,
    lines: &'a [PhysicalLine<'a>],
    next: usize,
    escape: char,
}

impl<'a> Reader<'a> {
    fn advance(&mut self) -> Option<PhysicalLine<'a>> {
        let line = self.lines.get(self.next).copied();
        self.next += 1;
        line
    }

    fn syntax_error(&self, line: u32, column: u32, message: String) -> Error {
        Error::Syntax { at: self.file.locate(line, column), message }
    }

    /// Reads the instruction starting on `first`: continuation lines, then heredoc bodies.
    /// Also reports whether empty lines were skipped inside the continuation.
    fn instruction(&mut self, first: PhysicalLine<'a>) -> Result<(Node, bool), Error> {
        let text = first.text.trim_start();
        let column = char_count(first.text) - char_count(text) + 1;
        let (start, mut continues) = trim_continuation(text, self.escape);
        let mut logical = start.to_owned();
        let mut last_line = first;
        let mut empty_continuation = false;
        while continues {
            let Some(line) = self.advance() else { break };
            last_line = line;
            if is_comment(line.text) {
                continue;
            }
            if line.text.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, more) = trim_continuation(line.text, self.escape);
            logical.push_str(part);
            continues = more;
        }
        let located = |message| self.syntax_error(first.number, column, message);
        let mut node = node_from_line(&logical, self.escape, self.file).map_err(located)?;
        if accepts_heredocs(&node) && logical.contains("<<") {
            for marker in heredoc::markers(&logical) {
                let (content, terminator) = self.heredoc_body(&marker.name, marker.chomp).ok_or_else(|| {
                    self.syntax_error(first.number, column, format!("unterminated heredoc {}", marker.name))
                })?;
                last_line = terminator;
                node.heredocs.push(Heredoc { name: marker.name, content, expand: marker.expand, chomp: marker.chomp });
            }
        }
        node.span = Span {
            start: Pos { line: first.number, column },
            end: Pos { line: last_line.number, column: char_count(last_line.text) + 1 },
        };
        if let Some(next) = node.next.as_mut() {
            next.span = node.span;
        }
        Ok((node, empty_continuation))
    }

    /// Reads a heredoc body up to its terminator line; returns the body and the terminator line, or `None` at end of file.
    fn heredoc_body(&mut self, name: &str, chomp: bool) -> Option<(String, PhysicalLine<'a>)> {
        let mut content = String::new();
        loop {
            let line = self.advance()?;
            let candidate = if chomp { line.text.trim_start_matches('\t') } else { line.text };
            if candidate == name {
                return Some((content, line));
            }
            content.push_str(line.raw);
        }
    }
}

/// RUN, COPY and ADD in shell form (also as ONBUILD triggers) can carry heredocs.
fn accepts_heredocs(node: &Node) -> bool {
    let target = node.next.as_deref().unwrap_or(node);
    HEREDOC_INSTRUCTIONS.contains(&target.keyword.as_str()) && !target.json
}

/// Builds the node for one logical line: keyword, flags, then the instruction's argument nodes.
fn node_from_line(line: &str, escape: char, file: &Arc<SourceFile>) -> Result<Node, String> {
    let trimmed = line.trim();
    let (keyword, rest) = trimmed.split_once(args::is_separator).unwrap_or((trimmed, ""));
    let (flags, rest) = flags::split_flags(rest);
    let rest = rest.trim();
    let keyword = keyword.to_lowercase();
    let (arguments, next) = if keyword == "onbuild" {
        let next = (!rest.is_empty()).then(|| node_from_line(rest, escape, file)).transpose()?;
        (args::Arguments::default(), next.map(Box::new))
    } else {
        (args::split_arguments(&keyword, rest, escape)?, None)
    };
    let origin = Pos { line: 0, column: 0 };
    Ok(Node {
        keyword,
        flags,
        args: arguments.values,
        json: arguments.json,
        heredocs: Vec::new(),
        next,
        original: line.to_owned(),
        span: Span { start: origin, end: origin },
        source: Arc::clone(file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(source: &str) -> String {
        parse(source, "Dockerfile").unwrap().dump()
    }

    #[test]
    fn heredoc_bodies_follow_the_logical_line() {
        let ast = parse("FROM a\nRUN <<EOF 3<<-IN cat \\\n  && x\necho hi\nEOF\n\t\tdata\n\tIN\nRUN y\n", "D").unwrap();
        let run = &ast.nodes[1];
        assert_eq!(run.original, "RUN <<EOF 3<<-IN cat   && x");
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        assert_eq!(run.heredocs[1].content, "\t\tdata\n");
        assert_eq!(run.heredocs[1].body(), "data\n");
        assert_eq!((run.span.start.line, run.span.end.line), (2, 7));
        assert_eq!(ast.nodes[2].span.start.line, 8);
    }

    #[test]
    fn quoted_delimiter_disables_expansion_and_json_has_no_heredocs() {
        let ast = parse("FROM a\nCOPY <<'EOF' /x\n$y\nEOF\nRUN [\"<<EOF\"]\n", "D").unwrap();
        assert!(!ast.nodes[1].heredocs[0].expand);
        assert!(ast.nodes[2].heredocs.is_empty());
    }

    #[test]
    fn onbuild_heredoc_attaches_to_onbuild() {
        let ast = parse("FROM a\nONBUILD RUN <<EOF\nhi\nEOF\n", "D").unwrap();
        assert_eq!(ast.nodes[1].dump(), "(onbuild (run \"<<EOF\"))");
        assert_eq!(ast.nodes[1].heredocs[0].content, "hi\n");
    }

    #[test]
    fn unterminated_heredoc_is_an_error() {
        let err = parse("FROM a\nRUN <<EOF\nhi\n", "D").unwrap_err();
        assert_eq!(err.to_string(), "D:2:1: unterminated heredoc EOF\nRUN <<EOF\n^");
    }

    #[test]
    fn errors_point_at_the_instruction() {
        let err = parse("FROM a\n  ENV PATH\n", "Dockerfile").unwrap_err();
        assert_eq!(err.to_string(), "Dockerfile:2:3: ENV must have two arguments\n  ENV PATH\n  ^");
        let err = parse("# only\n\n", "Dockerfile").unwrap_err();
        assert_eq!(err.message(), "file with no instructions");
    }

    #[test]
    fn directives_only_at_the_top() {
        let ast = parse("# syntax=x\n# Escape=`\nFROM a\n# check=y\nRUN a `\n b\n", "D").unwrap();
        assert_eq!(ast.escape, '`');
        assert_eq!(ast.directive("syntax"), Some("x"));
        assert_eq!(ast.directive("check"), None);
        assert_eq!(ast.nodes[1].args, vec!["a  b"]);
        let err = parse("# syntax=x\n# syntax=y\nFROM a\n", "D").unwrap_err();
        assert_eq!(err.message(), "only one syntax parser directive can be used");
    }

    #[test]
    fn empty_continuation_lines_warn() {
        let ast = parse("FROM a\nRUN a \\\n\n  # c\n b\n", "D").unwrap();
        assert_eq!(ast.warnings.len(), 1);
        assert_eq!(ast.warnings[0].message, "Empty continuation line found in: RUN a  b");
        assert_eq!(dump("FROM a\nRUN a \\\n\n  # c\n b\n"), "(from \"a\")\n(run \"a  b\")");
    }
}
