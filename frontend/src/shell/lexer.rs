//! The lexer proper: a character scanner that expands one word the way BuildKit's `shell.Lex` does.

use std::collections::BTreeSet;

use super::env::Env;
use super::pattern::Pattern;
use crate::error::Error;

/// Expands Dockerfile words with a given escape character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    pub(crate) escape: char,
    /// Keep quote characters in the output (used to detect quoted heredoc delimiters).
    pub(crate) raw_quotes: bool,
    /// Keep escape characters in the output.
    pub(crate) raw_escapes: bool,
    /// Leave references to unset variables as written instead of expanding them to nothing.
    pub(crate) skip_unset_env: bool,
    /// Treat quotes as ordinary characters (BuildKit's `SkipProcessQuotes`, used for heredoc bodies).
    pub(crate) skip_process_quotes: bool,
}

/// The result of expanding one word, with the variable names it referenced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The expanded word.
    pub value: String,
    /// Referenced names that were set (BuildKit's "matched").
    pub matched: BTreeSet<String>,
    /// Referenced names that were not set (BuildKit's "unmatched").
    pub unmatched: BTreeSet<String>,
}

impl Lexer {
    /// A lexer using `escape` (`\` or `` ` ``) as its escape character.
    pub fn new(escape: char) -> Self {
        Self { escape, raw_quotes: false, raw_escapes: false, skip_unset_env: false, skip_process_quotes: false }
    }

    /// Expands one word without splitting it: quote removal, escapes, and variable substitution.
    pub fn process_word(&self, word: &str, env: &impl Env) -> Result<Expanded, Error> {
        let mut scanner = Scanner::new(self, word, env);
        let (value, _) =
            scanner.process_until(None, self.raw_escapes).map_err(|message| expansion_error(word, message))?;
        Ok(Expanded { value, matched: scanner.matched, unmatched: scanner.unmatched })
    }

    /// Expands `word` and splits it at unquoted whitespace, including whitespace that comes from unquoted variables.
    pub fn process_words(&self, word: &str, env: &impl Env) -> Result<Vec<String>, Error> {
        let mut scanner = Scanner::new(self, word, env);
        let (_, words) =
            scanner.process_until(None, self.raw_escapes).map_err(|message| expansion_error(word, message))?;
        Ok(words)
    }
}

/// Wraps a lexer message with the word it is about.
fn expansion_error(word: &str, message: String) -> Error {
    Error::Expansion { word: word.to_owned(), message }
}

/// Accumulates words while expanding: unquoted whitespace ends a word, quoted text never does.
#[derive(Debug, Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    /// Adds a character that splits words if it is whitespace.
    fn add_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.add_raw_char(c);
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    /// Adds a character that never splits words.
    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    /// Adds text whose whitespace splits words (an unquoted variable's value).
    fn add_str(&mut self, text: &str) {
        text.chars().for_each(|c| self.add_char(c));
    }

    /// Adds quoted text as part of the current word.
    fn add_raw_str(&mut self, text: &str) {
        self.word.push_str(text);
        self.in_word = true;
    }

    /// The finished words.
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// The state of one expansion: input, position, and the variable names seen.
struct Scanner<'a, E> {
    lexer: &'a Lexer,
    chars: Vec<char>,
    at: usize,
    env: &'a E,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// The error BuildKit gives for `${` without `}`.
const MISSING_BRACE: &str = "syntax error: missing '}'";

impl<'a, E: Env> Scanner<'a, E> {
    fn new(lexer: &'a Lexer, word: &str, env: &'a E) -> Self {
        Self {
            lexer,
            chars: word.chars().collect(),
            at: 0,
            env,
            raw_escapes: lexer.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.at += usize::from(c.is_some());
        c
    }

    /// Looks a name up, recording whether it was set.
    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = self.env.get(name).map(str::to_owned);
        let seen = if value.is_some() { &mut self.matched } else { &mut self.unmatched };
        seen.insert(name.to_owned());
        value
    }

    /// Processes until `stop` (consumed) or the end of input; returns the text and its words.
    fn process_until(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>), String> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.process_until_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn process_until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.at += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    words.add_str(&value);
                    result.push_str(&value);
                }
                '\'' if !self.lexer.skip_process_quotes => {
                    let quoted = self.single_quoted()?;
                    words.add_raw_str(&quoted);
                    result.push_str(&quoted);
                }
                '"' if !self.lexer.skip_process_quotes => {
                    let quoted = self.double_quoted()?;
                    words.add_raw_str(&quoted);
                    result.push_str(&quoted);
                }
                _ => {
                    self.at += 1;
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!("unexpected end of statement while looking for matching {stop}")),
            None => Ok((result, words.finish())),
        }
    }

    /// `'...'`: everything literal up to the next single quote.
    fn single_quoted(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err("unexpected end of statement while looking for matching single-quote".into());
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    /// `"..."`: literal except `$` expansions; the escape character only escapes `"`, `$` and itself.
    fn double_quoted(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err("unexpected end of statement while looking for matching double-quote".into());
                }
                Some('"') => {
                    self.at += 1;
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.dollar()?),
                Some(c) => {
                    self.at += 1;
                    if c != self.lexer.escape {
                        result.push(c);
                        continue;
                    }
                    match self.peek() {
                        // An escape just before the end is dropped; the missing quote is reported next round.
                        None => {}
                        Some(next) if next == '"' || next == '$' || next == self.lexer.escape => {
                            if self.raw_escapes {
                                result.push(c);
                            }
                            self.at += 1;
                            result.push(next);
                        }
                        Some(_) => result.push(c),
                    }
                }
            }
        }
    }

    /// `$name`, `${name}` and `${name<modifier>word}`.
    fn dollar(&mut self) -> Result<String, String> {
        self.at += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.at += 1;
        match self.peek() {
            None => return Err(MISSING_BRACE.into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(modifier) = self.next() else {
            return Err(MISSING_BRACE.into());
        };
        match modifier {
            '}' => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' => {
                let Some(operator) = self.next() else {
                    return Err(MISSING_BRACE.into());
                };
                self.modified(&name, operator, true)
            }
            '+' | '-' | '?' | '#' | '%' => self.modified(&name, modifier, false),
            '/' => self.substituted(&name),
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }

    /// `${name[:]op word}` for `-`, `+`, `?`, `#`, `%` (the colon forms treat empty as unset).
    fn modified(&mut self, name: &str, operator: char, null_is_unset: bool) -> Result<String, String> {
        let colon = if null_is_unset { ":" } else { "" };
        let pattern_operator = operator == '#' || operator == '%';
        if !matches!(operator, '+' | '-' | '?') && (null_is_unset || !pattern_operator) {
            return Err(format!("unsupported modifier ({colon}{operator}) in substitution"));
        }
        // Patterns keep their escapes so `\*` stays a literal star for the matcher.
        let (word, _) = self.closing_brace_word(pattern_operator)?;
        let value = self.lookup(name);
        let Some(value) = value else {
            if self.lexer.skip_unset_env {
                return Ok(format!("${{{name}{colon}{operator}{word}}}"));
            }
            return match operator {
                '-' => Ok(word),
                '?' => Err(format!("{name}: {}", if word.is_empty() { "is not allowed to be unset" } else { &word })),
                _ => Ok(String::new()),
            };
        };
        let empty_as_unset = null_is_unset && value.is_empty();
        match operator {
            '-' => Ok(if empty_as_unset { word } else { value }),
            '+' => Ok(if empty_as_unset { String::new() } else { word }),
            '?' if empty_as_unset => {
                Err(format!("{name}: {}", if word.is_empty() { "is not allowed to be empty" } else { &word }))
            }
            '?' => Ok(value),
            _ => {
                // A doubled operator (`##`, `%%`) asks for the longest match.
                let (longest, pattern) = match word.strip_prefix(operator) {
                    Some(pattern) => (true, pattern),
                    None => (false, word.as_str()),
                };
                let pattern = Pattern::new(pattern);
                Ok(if operator == '#' {
                    pattern.remove_prefix(&value, longest)
                } else {
                    pattern.remove_suffix(&value, longest)
                })
            }
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn substituted(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        self.at += usize::from(all);
        let (pattern, _) = self
            .process_until(Some('/'), true)
            .map_err(|e| if self.peek().is_none() { "syntax error: missing '/' in ${}".to_owned() } else { e })?;
        let (replacement, _) = self.closing_brace_word(true)?;
        match self.lookup(name) {
            Some(value) => Ok(Pattern::new(&pattern).replace(&value, &replacement, all)),
            None if self.lexer.skip_unset_env => {
                Ok(format!("${{{name}/{}{pattern}/{replacement}}}", if all { "/" } else { "" }))
            }
            None => Ok(String::new()),
        }
    }

    /// The word up to the closing `}` of a substitution.
    fn closing_brace_word(&mut self, raw_escapes: bool) -> Result<(String, Vec<String>), String> {
        self.process_until(Some('}'), raw_escapes)
            .map_err(|e| if self.peek().is_none() { MISSING_BRACE.to_owned() } else { e })
    }

    /// A variable name: letters, digits and `_`; or a run of digits (positional); or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(digit) = self.peek().filter(char::is_ascii_digit) {
                    name.push(digit);
                    self.at += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.at += 1;
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.at += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::EnvMap;

    fn env() -> EnvMap {
        [("PATH", "/usr/local/bin:/usr/bin"), ("FILE", "archive.tar.gz"), ("EMPTY", "")].into_iter().collect()
    }

    fn word(input: &str) -> Result<String, Error> {
        Lexer::new('\\').process_word(input, &env()).map(|e| e.value)
    }

    #[test]
    fn pattern_operators() {
        assert_eq!(word("${FILE#*.}").unwrap(), "tar.gz");
        assert_eq!(word("${FILE##*.}").unwrap(), "gz");
        assert_eq!(word("${FILE%.*}").unwrap(), "archive.tar");
        assert_eq!(word("${FILE%%.*}").unwrap(), "archive");
        assert_eq!(word("${PATH/usr/opt}").unwrap(), "/opt/local/bin:/usr/bin");
        assert_eq!(word("${PATH//usr/opt}").unwrap(), "/opt/local/bin:/opt/bin");
        assert_eq!(word("${FILE%\\.gz}").unwrap(), "archive.tar");
        assert_eq!(word("${UNSET#x}").unwrap(), "");
    }

    #[test]
    fn skip_process_quotes_expands_inside_quotes_and_keeps_them() {
        let env: EnvMap = [("name", "world")].into_iter().collect();
        let lexer = Lexer { skip_process_quotes: true, ..Lexer::new('\\') };
        let expand = |word: &str| lexer.process_word(word, &env).unwrap().value;
        assert_eq!(expand("Hello '${name}'!"), "Hello 'world'!");
        assert_eq!(expand("Hello \"${name}\"!"), "Hello \"world\"!");
        assert_eq!(expand("a\\$b \\\\ c"), "a$b \\ c");
    }

    #[test]
    fn errors() {
        for bad in ["${}", "${.}", "${FILE:=x}", "${FILE", "${FILE:-x", "${FILE:#x}", "${PATH/x", "'a", "\"a"] {
            assert!(matches!(word(bad), Err(Error::Expansion { .. })), "{bad} should fail");
        }
        assert_eq!(word("${EMPTY:?custom}").unwrap_err().message(), "EMPTY: custom");
        assert_eq!(word("${NOPE?}").unwrap_err().message(), "NOPE: is not allowed to be unset");
    }

    #[test]
    fn reports_matched_and_unmatched_names() {
        let expanded = Lexer::new('\\').process_word("$FILE ${NOPE:-$EMPTY} $1", &env()).unwrap();
        assert_eq!(expanded.matched.into_iter().collect::<Vec<_>>(), vec!["EMPTY", "FILE"]);
        assert_eq!(expanded.unmatched.into_iter().collect::<Vec<_>>(), vec!["1", "NOPE"]);
    }

    #[test]
    fn words_split_unquoted_values_only() {
        let env: EnvMap = [("V", "a  b")].into_iter().collect();
        let lexer = Lexer::new('\\');
        assert_eq!(lexer.process_words("x$V \"$V\" ''", &env).unwrap(), vec!["xa", "b", "a  b"]);
    }

    #[test]
    fn raw_modes_keep_quotes_escapes_and_unset_references() {
        let lexer = Lexer { raw_quotes: true, raw_escapes: true, skip_unset_env: true, ..Lexer::new('\\') };
        let expanded = lexer.process_word(r#"'a'"b\$"\x$NOPE${NOPE:-d}"#, &EnvMap::new()).unwrap();
        assert_eq!(expanded.value, r#"'a'"b\$"\x$NOPE${NOPE:-d}"#);
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(Lexer::new('`').process_word("a`$b\\c", &env()).unwrap().value, "a$b\\c");
    }
}
