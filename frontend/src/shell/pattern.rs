//! Shell glob patterns (`*`, `?`, `[...]`, `\x`) for `${v#p}`, `${v%p}` and `${v/p/r}`.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A character that must match itself.
    Literal(char),
    /// `?`: any one character.
    AnyChar,
    /// `*`: any run of characters, possibly empty.
    AnyRun,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `pattern`; a `[` without a closing `]` is literal, `\` makes the next character literal.
    pub fn new(pattern: &str) -> Self {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut at = 0;
        while at < chars.len() {
            let token = match chars[at] {
                '*' => Token::AnyRun,
                '?' => Token::AnyChar,
                '\\' if at + 1 < chars.len() => {
                    at += 1;
                    Token::Literal(chars[at])
                }
                '[' => match bracket_class(&chars[at + 1..]) {
                    Some((token, used)) => {
                        at += used;
                        token
                    }
                    None => Token::Literal('['),
                },
                c => Token::Literal(c),
            };
            tokens.push(token);
            at += 1;
        }
        Self { tokens }
    }

    /// True when the pattern matches all of `text`.
    fn matches(&self, text: &[char]) -> bool {
        // Classic two-pointer glob match with backtracking to the last `*`.
        let (mut t, mut p) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::AnyRun) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(token) if token_matches(token, text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p + 1;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|token| *token == Token::AnyRun)
    }

    /// `${v#p}` (shortest) and `${v##p}` (longest): `value` without the matching prefix.
    pub fn remove_prefix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut lengths: Vec<usize> = (0..=chars.len()).collect();
        if longest {
            lengths.reverse();
        }
        match lengths.into_iter().find(|&len| self.matches(&chars[..len])) {
            Some(len) => chars[len..].iter().collect(),
            None => value.to_owned(),
        }
    }

    /// `${v%p}` (shortest) and `${v%%p}` (longest): `value` without the matching suffix.
    pub fn remove_suffix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut starts: Vec<usize> = (0..=chars.len()).collect();
        if !longest {
            starts.reverse();
        }
        match starts.into_iter().find(|&start| self.matches(&chars[start..])) {
            Some(start) => chars[..start].iter().collect(),
            None => value.to_owned(),
        }
    }

    /// `${v/p/r}` and `${v//p/r}`: replaces the leftmost longest non-empty match (or every one) with `replacement`.
    pub fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::with_capacity(value.len());
        let mut start = 0;
        let mut replaced = false;
        while start < chars.len() {
            let end = (!replaced || all)
                .then(|| (start + 1..=chars.len()).rev().find(|&end| self.matches(&chars[start..end])))
                .flatten();
            match end {
                Some(end) => {
                    out.push_str(replacement);
                    start = end;
                    replaced = true;
                }
                None => {
                    out.push(chars[start]);
                    start += 1;
                }
            }
        }
        out
    }
}

/// Parses a bracket expression after its `[`: returns the token and how many characters it used, `]` included.
fn bracket_class(chars: &[char]) -> Option<(Token, usize)> {
    let negated = matches!(chars.first(), Some('!' | '^'));
    let mut at = usize::from(negated);
    let mut ranges = Vec::new();
    // A `]` right after the opening bracket (or its negation) is a member, not the end.
    let mut first = true;
    while at < chars.len() {
        let c = chars[at];
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, at + 1));
        }
        first = false;
        if at + 2 < chars.len() && chars[at + 1] == '-' && chars[at + 2] != ']' {
            ranges.push((c, chars[at + 2]));
            at += 3;
        } else {
            ranges.push((c, c));
            at += 1;
        }
    }
    None
}

/// True when the single-character `token` matches `c`.
fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(expected) => *expected == c,
        Token::AnyChar | Token::AnyRun => true,
        Token::Class { negated, ranges } => ranges.iter().any(|&(low, high)| low <= c && c <= high) != *negated,
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn prefix_removal() {
        assert_eq!(Pattern::new("*/").remove_prefix("/usr/local/bin", false), "usr/local/bin");
        assert_eq!(Pattern::new("*/").remove_prefix("/usr/local/bin", true), "bin");
        assert_eq!(Pattern::new("x").remove_prefix("abc", true), "abc");
        assert_eq!(Pattern::new("[a-c]?").remove_prefix("bxy", false), "y");
    }

    #[test]
    fn suffix_removal() {
        assert_eq!(Pattern::new(".*").remove_suffix("file.tar.gz", false), "file.tar");
        assert_eq!(Pattern::new(".*").remove_suffix("file.tar.gz", true), "file");
        assert_eq!(Pattern::new("[!0-9]").remove_suffix("v12x", false), "v12");
        assert_eq!(Pattern::new("\\*").remove_suffix("a*", false), "a");
    }

    #[test]
    fn replacement() {
        assert_eq!(Pattern::new("o").replace("foo boo", "0", false), "f0o boo");
        assert_eq!(Pattern::new("o").replace("foo boo", "0", true), "f00 b00");
        assert_eq!(Pattern::new("o*").replace("foo boo", "X", false), "fX");
        assert_eq!(Pattern::new("").replace("abc", "X", true), "abc");
        assert_eq!(Pattern::new("[").replace("a[b", "(", true), "a(b");
    }
}
