//! Physical lines and BuildKit's line-continuation rule.

/// One physical line of the Dockerfile.
#[derive(Debug, Clone, Copy)]
pub(super) struct PhysicalLine<'a> {
    /// 1-based line number.
    pub number: u32,
    /// The text without its line ending.
    pub text: &'a str,
    /// The text with its line ending (`\n`, `\r\n`, or nothing on a last line without newline).
    pub raw: &'a str,
}

/// Splits `source` into physical lines, dropping a leading UTF-8 byte-order mark.
pub(super) fn physical_lines(source: &str) -> Vec<PhysicalLine<'_>> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    source
        .split_inclusive('\n')
        .zip(1..)
        .map(|(raw, number)| {
            let text = raw.strip_suffix('\n').unwrap_or(raw);
            let text = text.strip_suffix('\r').unwrap_or(text);
            PhysicalLine { number, text, raw }
        })
        .collect()
}

/// True for lines whose first non-blank character is `#`.
pub(super) fn is_comment(text: &str) -> bool {
    text.trim_start().starts_with('#')
}

/// Removes a continuation escape at the end of `text` (spaces and tabs may follow it).
/// Returns the remaining text and whether the instruction continues onto the next line.
/// An escape that is itself escaped (an even run of escapes) does not continue the line.
pub(super) fn trim_continuation(text: &str, escape: char) -> (&str, bool) {
    let body = text.trim_end_matches([' ', '\t']);
    let without_escapes = body.trim_end_matches(escape);
    let escape_run = (body.len() - without_escapes.len()) / escape.len_utf8();
    if escape_run % 2 == 1 { (&body[..body.len() - escape.len_utf8()], true) } else { (text, false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_needs_an_odd_run_of_escapes() {
        assert_eq!(trim_continuation("echo a \\ \t", '\\'), ("echo a ", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", true));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", false));
        assert_eq!(trim_continuation("a\\\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a`", '`'), ("a", true));
        assert_eq!(trim_continuation("a\\", '`'), ("a\\", false));
    }

    #[test]
    fn lines_drop_bom_and_crlf_and_keep_raw_endings() {
        let lines = physical_lines("\u{feff}A\r\nB\nC");
        let texts: Vec<_> = lines.iter().map(|l| (l.number, l.text, l.raw)).collect();
        assert_eq!(texts, vec![(1, "A", "A\r\n"), (2, "B", "B\n"), (3, "C", "C")]);
    }
}
