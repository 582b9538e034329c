//! The leading `--flag` words of an instruction, split off the way BuildKit's `extractBuilderFlags` does.

/// Splits leading words that start with `--` off `rest`, removing their quotes and `\` escapes.
/// A lone `--` ends the flags and is dropped. Returns the flags and the remaining text.
pub(super) fn split_flags(rest: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut chars = rest.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            return (flags, "");
        };
        if !rest[start..].starts_with("--") {
            return (flags, &rest[start..]);
        }
        let mut word = String::new();
        // A quoted empty string still makes a flag (`--a=""`), so track whether quotes were seen.
        let mut quoted = false;
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        while let Some((at, c)) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => {
                    end = at;
                    break;
                }
                (None, '\'' | '"') => {
                    quote = Some(c);
                    quoted = true;
                }
                (Some(open), c) if c == open => quote = None,
                (_, '\\') => match chars.next() {
                    Some((_, escaped)) => word.push(escaped),
                    None => quote = None,
                },
                (_, c) => word.push(c),
            }
        }
        if word == "--" {
            return (flags, rest[end..].trim_start());
        }
        if quoted || !word.is_empty() {
            flags.push(word);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_flags;

    #[test]
    fn flags_lose_quotes_and_stop_at_first_plain_word() {
        let (flags, rest) = split_flags(r#"--a="b c" --d='e' --f=g\ h foo --x"#);
        assert_eq!(flags, vec!["--a=b c", "--d=e", "--f=g h"]);
        assert_eq!(rest, "foo --x");
    }

    #[test]
    fn double_dash_ends_flags() {
        assert_eq!(split_flags("--doit=true -- [ \"a\" ]"), (vec!["--doit=true".to_string()], "[ \"a\" ]"));
        assert_eq!(split_flags("--doit -- "), (vec!["--doit".to_string()], ""));
        assert_eq!(split_flags("-- foo"), (vec![], "foo"));
    }

    #[test]
    fn only_flags() {
        assert_eq!(split_flags("--a --b"), (vec!["--a".to_string(), "--b".to_string()], ""));
        assert_eq!(split_flags(""), (vec![], ""));
    }
}
