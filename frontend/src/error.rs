//! The crate's single error type. Parse errors carry a [`Location`] so they can quote the offending line.

use std::fmt;
use std::sync::Arc;

/// A Dockerfile's name and full text, shared by every node parsed from it so errors can quote source lines.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceFile {
    name: String,
    text: String,
    /// Byte offset of each physical line's start, so looking a line up does not rescan the file.
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps a file name and its text for sharing between nodes.
    pub fn new(name: &str, text: &str) -> Arc<Self> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text).to_owned();
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Arc::new(Self { name: name.to_owned(), text, line_starts })
    }

    /// The file name given to [`crate::parser::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Physical line `line` (1-based) without its line ending; empty when out of range.
    pub fn line(&self, line: u32) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1) as usize) else { return "" };
        let rest = &self.text[start..];
        let found = rest.split_once('\n').map_or(rest, |(line, _)| line);
        found.strip_suffix('\r').unwrap_or(found)
    }

    /// The location of `line`:`column` in this file, with the source line attached for the caret display.
    pub fn locate(&self, line: u32, column: u32) -> Location {
        Location { file: self.name.clone(), line, column, source_line: self.line(line).to_owned() }
    }
}

// The text can be large; debugging output only needs to say which file this is.
impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SourceFile").field(&self.name).finish()
    }
}

/// A point in a Dockerfile that an error refers to, with the source line for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The Dockerfile's name as given to the parser.
    pub file: String,
    /// 1-based physical line.
    pub line: u32,
    /// 1-based column (in characters) on that line.
    pub column: u32,
    /// The physical line's text, without line ending.
    pub source_line: String,
}

impl Location {
    /// The source line followed by a line holding a `^` under the column.
    pub fn excerpt(&self) -> String {
        // Tabs are copied into the padding so the caret lines up in a terminal whatever the tab width.
        let padding: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!("{}\n{padding}^", self.source_line)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Everything that can go wrong in the frontend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The Dockerfile text is malformed: a bad directive, JSON, heredoc, ENV form, or no instructions at all.
    #[error("{at}: {message}\n{}", at.excerpt())]
    Syntax { at: Location, message: String },
    /// An instruction is unknown or has invalid flags or arguments.
    #[error("{at}: {message}\n{}", at.excerpt())]
    Instruction { at: Location, message: String },
    /// The shell lexer could not expand a word (bad quoting or substitution, or a `${v?}` on an unset variable).
    #[error("failed to process \"{word}\": {message}")]
    Expansion { word: String, message: String },
    /// A `--mount` value cannot be parsed.
    #[error("invalid mount \"{value}\": {message}")]
    Mount { value: String, message: String },
    /// The Dockerfile cannot be built as asked: no stages, an unknown target, a stage cycle.
    #[error("{message}")]
    Build { message: String },
}

impl Error {
    /// The message without location or excerpt, as BuildKit words it.
    pub fn message(&self) -> &str {
        match self {
            Self::Syntax { message, .. }
            | Self::Instruction { message, .. }
            | Self::Expansion { message, .. }
            | Self::Mount { message, .. }
            | Self::Build { message } => message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_location_line_and_caret() {
        let file = SourceFile::new("Dockerfile", "FROM a\n\tFOO bar\n");
        let err = Error::Instruction { at: file.locate(2, 2), message: "unknown instruction: FOO".into() };
        assert_eq!(err.to_string(), "Dockerfile:2:2: unknown instruction: FOO\n\tFOO bar\n\t^");
    }

    #[test]
    fn line_lookup_strips_bom_and_crlf() {
        let file = SourceFile::new("f", "\u{feff}FROM a\r\nRUN b");
        assert_eq!(file.line(1), "FROM a");
        assert_eq!(file.line(2), "RUN b");
        assert_eq!(file.line(9), "");
    }
}
