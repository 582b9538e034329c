//! How each instruction's argument text becomes BuildKit's argument nodes (see the conformance README's table).

use nom::Parser;
use nom::bytes::complete::take_while1;

/// The argument nodes of one instruction.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Arguments {
    /// The argument nodes.
    pub values: Vec<String>,
    /// True when they came from a JSON array.
    pub json: bool,
}

/// BuildKit's message for a valid JSON array holding something other than strings.
const NON_STRING_JSON: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// Splits `rest` (trimmed, flags removed) for instruction `keyword` (lower case). ONBUILD is handled by the caller.
pub(super) fn split_arguments(keyword: &str, rest: &str, escape: char) -> Result<Arguments, String> {
    let plain = |values: Vec<String>| Arguments { values, json: false };
    Ok(match keyword {
        "from" | "expose" => plain(split_whitespace(rest)),
        "add" | "copy" | "volume" => match json_array(rest)? {
            Some(values) => Arguments { values, json: true },
            None => plain(split_whitespace(rest)),
        },
        "run" | "cmd" | "entrypoint" | "shell" => maybe_json(rest)?,
        "env" => plain(name_values(rest, "ENV", escape)?),
        "label" => plain(name_values(rest, "LABEL", escape)?),
        "arg" => plain(shell_words(rest, escape)),
        "maintainer" | "stopsignal" | "user" | "workdir" => plain(whole(rest)),
        "healthcheck" => healthcheck(rest)?,
        _ => Arguments::default(),
    })
}

/// The whole text as one node, or none if it is empty.
fn whole(rest: &str) -> Vec<String> {
    if rest.is_empty() { Vec::new() } else { vec![rest.to_owned()] }
}

/// A JSON array of strings gives one node each; anything else is one node holding the text as written.
fn maybe_json(rest: &str) -> Result<Arguments, String> {
    Ok(match json_array(rest)? {
        Some(values) => Arguments { values, json: true },
        None => Arguments { values: whole(rest), json: false },
    })
}

/// HEALTHCHECK: the first word, then the rest parsed like CMD.
fn healthcheck(rest: &str) -> Result<Arguments, String> {
    let Ok((after, kind)) = take_while1::<_, _, nom::error::Error<&str>>(|c: char| !c.is_whitespace()).parse(rest)
    else {
        return Ok(Arguments::default());
    };
    let mut command = maybe_json(after.trim_start())?;
    command.values.insert(0, kind.to_owned());
    Ok(command)
}

/// The strings of `rest` if it is a JSON array of strings; `None` if it is not JSON at all.
/// A valid array holding a non-string is an error, as in BuildKit.
fn json_array(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NON_STRING_JSON.to_owned()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Go's `[\t\v\f\r ]+` separator, which BuildKit uses to split FROM/EXPOSE arguments and the keyword.
pub(super) fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits on runs of [`is_separator`]; quotes are not special.
fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split(is_separator).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words (BuildKit's `parseWords`).
pub(super) fn shell_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // `""` is a word even though it adds no characters to it.
    let mut has_quotes = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if has_quotes || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                has_quotes = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    has_quotes = true;
                }
                if c == escape {
                    // An escape keeps itself and the next character, whatever that is; at the end it is dropped.
                    let Some(next) = chars.next() else { break };
                    word.push(c);
                    word.push(next);
                    continue;
                }
                word.push(c);
            }
            Some(open) => {
                if c == open {
                    quote = None;
                }
                // Only single quotes make the escape character literal.
                if c == escape && open != '\'' {
                    let Some(next) = chars.next() else {
                        quote = None;
                        continue;
                    };
                    word.push(c);
                    word.push(next);
                    continue;
                }
                word.push(c);
            }
        }
    }
    if has_quotes || !word.is_empty() {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `key value` (legacy, separator `""`) or `key=value...` (separator `"="`), three nodes per pair.
fn name_values(rest: &str, instruction: &str, escape: char) -> Result<Vec<String>, String> {
    let words = shell_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let Some((key, value)) = rest.split_once(is_separator) else {
            return Err(format!("{instruction} must have two arguments"));
        };
        return Ok(vec![key.to_owned(), value.trim_start_matches(is_separator).to_owned(), String::new()]);
    }
    let mut nodes = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!("Syntax error - can't find = in \"{word}\". Must be of the form: name=value"));
        };
        nodes.extend([key.to_owned(), value.to_owned(), "=".to_owned()]);
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(keyword: &str, rest: &str) -> Vec<String> {
        split_arguments(keyword, rest, '\\').unwrap().values
    }

    #[test]
    fn json_or_shell_form() {
        assert_eq!(
            split_arguments("cmd", r#"["a", "b"]"#, '\\').unwrap(),
            Arguments { values: vec!["a".into(), "b".into()], json: true }
        );
        assert_eq!(values("cmd", "['a']"), vec!["['a']"]);
        assert_eq!(values("copy", r#"["a" b"#), vec![r#"["a""#, "b"]);
        assert_eq!(split_arguments("cmd", r#"["a", ["b"]]"#, '\\').unwrap_err(), NON_STRING_JSON);
        assert!(values("run", "").is_empty());
    }

    #[test]
    fn env_forms() {
        assert_eq!(values("env", "name  value  x"), vec!["name", "value  x", ""]);
        assert_eq!(values("env", r#"a="b c" d=e\ f"#), vec!["a", "\"b c\"", "=", "d", "e\\ f", "="]);
        assert_eq!(split_arguments("env", "PATH", '\\').unwrap_err(), "ENV must have two arguments");
        assert!(split_arguments("label", "a=b c", '\\').unwrap_err().contains("can't find = in \"c\""));
    }

    #[test]
    fn arg_words_keep_quotes() {
        assert_eq!(values("arg", r#"abc="123 456" def ''"#), vec!["abc=\"123 456\"", "def", "''"]);
        assert_eq!(shell_words("a`\"b c", '`'), vec!["a`\"b", "c"]);
    }

    #[test]
    fn healthcheck_kind_then_command() {
        assert_eq!(values("healthcheck", "CMD   a b"), vec!["CMD", "a b"]);
        assert_eq!(values("healthcheck", "NONE"), vec!["NONE"]);
        assert!(values("healthcheck", "").is_empty());
    }
}
