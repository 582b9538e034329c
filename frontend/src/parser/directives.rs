//! Parser directives (`# syntax=`, `# escape=`, `# check=`) in the leading run of comment lines.

use nom::bytes::complete::take_while;
use nom::character::complete::{char, satisfy, space0};
use nom::combinator::recognize;
use nom::{IResult, Parser};

/// The directive keys BuildKit recognises.
const KNOWN_DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

/// Tracks the leading run of directives: which were seen, and when the run ended.
#[derive(Debug, Default)]
pub(super) struct DirectiveScanner {
    done: bool,
    seen: Vec<(String, String)>,
}

/// What a line means for the directive run.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DirectiveLine {
    /// A directive: lower-cased key and trimmed value.
    Directive { name: String, value: String },
    /// Not a directive (or the run already ended).
    Other,
}

impl DirectiveScanner {
    /// Classifies `line` (leading whitespace already removed). The first line that is not a known directive ends the run.
    /// Errors: a directive given twice, or an escape other than `` ` `` or `\`.
    pub fn observe(&mut self, line: &str) -> Result<DirectiveLine, String> {
        if self.done {
            return Ok(DirectiveLine::Other);
        }
        let Some((name, value)) = directive(line).ok().map(|(_, found)| found) else {
            self.done = true;
            return Ok(DirectiveLine::Other);
        };
        let name = name.to_ascii_lowercase();
        if !KNOWN_DIRECTIVES.contains(&name.as_str()) {
            self.done = true;
            return Ok(DirectiveLine::Other);
        }
        if self.seen.iter().any(|(seen, _)| *seen == name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        if name == "escape" && value != "`" && value != "\\" {
            return Err(format!("invalid escape token '{value}' does not match ` or \\"));
        }
        self.seen.push((name.clone(), value.to_owned()));
        Ok(DirectiveLine::Directive { name, value: value.to_owned() })
    }
}

/// `#`, blanks, a key of ASCII letters and digits starting with a letter, `=`, blanks, then a non-empty value
/// (trailing whitespace trimmed).
fn directive(line: &str) -> IResult<&str, (&str, &str)> {
    let key = recognize((satisfy(|c| c.is_ascii_alphabetic()), take_while(|c: char| c.is_ascii_alphanumeric())));
    let (rest, (_, _, name, _, _, _)) = (char('#'), space0, key, space0, char('='), space0).parse(line)?;
    let value = rest.trim_end();
    if value.is_empty() {
        return Err(nom::Err::Error(nom::error::Error::new(rest, nom::error::ErrorKind::NonEmpty)));
    }
    Ok(("", (name, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directive_line(name: &str, value: &str) -> DirectiveLine {
        DirectiveLine::Directive { name: name.into(), value: value.into() }
    }

    #[test]
    fn keys_are_case_insensitive_and_values_trimmed() {
        let mut scanner = DirectiveScanner::default();
        assert_eq!(scanner.observe("# ESCAPE = ` "), Ok(directive_line("escape", "`")));
        assert_eq!(scanner.observe("#syntax=docker/dockerfile:1"), Ok(directive_line("syntax", "docker/dockerfile:1")));
    }

    #[test]
    fn run_ends_at_first_other_line() {
        let mut scanner = DirectiveScanner::default();
        assert_eq!(scanner.observe("# unknown=1"), Ok(DirectiveLine::Other));
        assert_eq!(scanner.observe("# escape=`"), Ok(DirectiveLine::Other));
    }

    #[test]
    fn duplicates_and_bad_escapes_are_errors() {
        let mut scanner = DirectiveScanner::default();
        scanner.observe("# check=skip=all").unwrap();
        assert_eq!(scanner.observe("# CHECK=x"), Err("only one check parser directive can be used".into()));
        let mut scanner = DirectiveScanner::default();
        assert!(scanner.observe("# escape=x").unwrap_err().contains("invalid escape token 'x'"));
    }
}
