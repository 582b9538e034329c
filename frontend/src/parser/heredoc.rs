//! Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) on RUN, COPY and ADD lines.

use nom::bytes::complete::tag;
use nom::character::complete::{char, digit0};
use nom::combinator::opt;
use nom::{IResult, Parser};

use crate::shell::{EnvMap, Lexer};

/// A heredoc marker found on an instruction line; the body is read from the following lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The delimiter with quotes removed.
    pub name: String,
    /// False when the delimiter was (partly) quoted.
    pub expand: bool,
    /// True for `<<-`.
    pub chomp: bool,
}

/// The heredoc markers among the shell words of `line`, in order.
pub(crate) fn markers(line: &str) -> Vec<Marker> {
    // Words are split with quotes and escapes kept, so `"<<EOF"` stays quoted and is not a marker.
    let lexer = Lexer { raw_quotes: true, raw_escapes: true, ..Lexer::new('\\') };
    let words = lexer.process_words(line, &EnvMap::new()).unwrap_or_default();
    words.iter().filter_map(|word| marker(word)).collect()
}

/// Parses one word as a heredoc marker.
pub(crate) fn marker(word: &str) -> Option<Marker> {
    let (delimiter, chomp) = marker_prefix(word).ok()?;
    if delimiter.is_empty() || delimiter.contains('<') {
        return None;
    }
    // Expanding the delimiter with and without quote removal tells whether any part of it was quoted.
    let unquoted = Lexer { skip_unset_env: true, ..Lexer::new('\\') };
    let raw = Lexer { raw_quotes: true, ..unquoted };
    let names = unquoted.process_words(delimiter, &EnvMap::new()).ok()?;
    let raw_names = raw.process_words(delimiter, &EnvMap::new()).ok()?;
    let [name] = names.as_slice() else {
        return None;
    };
    let [raw_name] = raw_names.as_slice() else {
        return None;
    };
    let quote_count = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Some(Marker { name: name.clone(), expand: quote_count(name) == quote_count(raw_name), chomp })
}

/// An optional file descriptor, `<<`, and an optional `-`; yields the delimiter text and whether `-` was given.
fn marker_prefix(word: &str) -> IResult<&str, bool> {
    let (delimiter, (_, _, dash)) = (digit0, tag("<<"), opt(char('-'))).parse(word)?;
    Ok((delimiter, dash.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(line: &str) -> Vec<(String, bool, bool)> {
        markers(line).into_iter().map(|m| (m.name, m.expand, m.chomp)).collect()
    }

    #[test]
    fn plain_chomped_and_quoted_markers() {
        assert_eq!(found("RUN <<EOF"), vec![("EOF".into(), true, false)]);
        assert_eq!(found("COPY <<-EOT /x"), vec![("EOT".into(), true, true)]);
        assert_eq!(found(r#"COPY <<"EOF" <<'E2' d/"#), vec![("EOF".into(), false, false), ("E2".into(), false, false)]);
        assert_eq!(found("RUN <<EOF 3<<IN1 awk"), vec![("EOF".into(), true, false), ("IN1".into(), true, false)]);
    }

    #[test]
    fn non_markers() {
        assert!(found(r#"RUN echo "<<EOF" a<<b <<"#).is_empty());
        assert!(found("RUN cat <<<EOF").is_empty());
        assert!(found("RUN 'unterminated <<EOF").is_empty());
    }
}
