//! Path patterns as `.dockerignore`, `COPY --exclude` and local sources use them: Go `filepath.Match` globs
//! plus `**`, `!` re-inclusion, the last matching pattern deciding, and a pattern that matches a directory
//! matching everything below it.

use globset::{GlobBuilder, GlobMatcher};

/// A compiled, ordered list of patterns.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    glob: GlobMatcher,
}

/// A pattern that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// Why it is invalid.
    pub reason: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid pattern {:?}: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for PatternError {}

/// Reads a `.dockerignore` file into patterns as Docker does: `#` comment lines and blank lines are skipped,
/// each line is trimmed and cleaned, and a leading `/` is dropped (paths are relative to the context).
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patterns = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (invert, rest) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let mut cleaned = if rest.is_empty() { String::new() } else { clean(rest) };
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
        patterns.push(if invert { format!("!{cleaned}") } else { cleaned });
    }
    patterns
}

impl PatternMatcher {
    /// Compiles patterns; `!` marks a re-inclusion.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut compiled = Vec::new();
        for raw in patterns {
            let raw = raw.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            let (exclusion, body) = match raw.strip_prefix('!') {
                Some("") => {
                    return Err(PatternError {
                        pattern: raw.into(),
                        reason: "illegal exclusion pattern: \"!\"".into(),
                    });
                }
                Some(body) => (true, body),
                None => (false, raw),
            };
            let text = clean(body);
            let glob = GlobBuilder::new(&escape_braces(&text))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| PatternError { pattern: raw.into(), reason: e.kind().to_string() })?;
            compiled.push(Pattern { text, exclusion, glob: glob.compile_matcher() });
        }
        Ok(Self { patterns: compiled })
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some pattern re-includes paths; walkers may then not skip excluded directories wholesale.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether the slash-separated relative `path` is matched, directly or through one of its parents.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.trim_start_matches("./").trim_start_matches('/');
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion cannot change an already matched path, nor an exclusion an unmatched one.
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.glob.is_match(path) || parents.iter().any(|p| pattern.glob.is_match(p)) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// The patterns as compiled (cleaned, with `!` for re-inclusions).
    pub fn patterns(&self) -> Vec<String> {
        self.patterns.iter().map(|p| if p.exclusion { format!("!{}", p.text) } else { p.text.clone() }).collect()
    }
}

/// Lexically cleans a slash path like Go's `path.Clean`: no `.` elements, `..` resolved, no double slashes.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Match` has no `{a,b}` alternation; globset does, so braces are made literal.
fn escape_braces(pattern: &str) -> String {
    pattern.replace('{', "[{]").replace('}', "[}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).unwrap()
    }

    #[test]
    fn negation_and_order() {
        let m = matcher(&["ba*", "Dockerfile", "!bay", ".dockerignore"]);
        for (path, want) in [("bar", true), ("baz", true), ("bay", false), ("foo", false), ("Dockerfile", true)] {
            assert_eq!(m.matches(path), want, "{path}");
        }
    }

    #[test]
    fn directory_match_covers_contents_and_star_stops_at_slash() {
        let m = matcher(&["vendor", "*.o"]);
        assert!(m.matches("vendor/a/b.c"));
        assert!(m.matches("x.o"));
        assert!(!m.matches("src/x.o"));
        assert!(matcher(&["**/*.o"]).matches("src/deep/x.o"));
        assert!(matcher(&["src/**"]).matches("src/a/b"));
    }

    #[test]
    fn reinclusion_inside_excluded_dir() {
        let m = matcher(&["docs", "!docs/keep.md"]);
        assert!(m.matches("docs/other.md"));
        assert!(!m.matches("docs/keep.md"));
        assert!(m.has_exclusions());
    }

    #[test]
    fn lone_bang_is_an_error() {
        let err = PatternMatcher::new(&read_ignore_file("!\n")).unwrap_err();
        assert!(err.to_string().contains("illegal exclusion pattern"), "{err}");
    }

    #[test]
    fn ignore_file_reading() {
        let text = "\u{feff}# comment\n\n  /abs/path  \n! neg/./x/..\nkeep#hash\n";
        assert_eq!(read_ignore_file(text), vec!["abs/path", "!neg", "keep#hash"]);
    }

    #[test]
    fn clean_like_go() {
        for (input, want) in [("a/./b/../c", "a/c"), ("/../a", "/a"), ("../a", "../a"), ("", "."), ("a//b/", "a/b")] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn braces_are_literal() {
        assert!(matcher(&["{a,b}"]).matches("{a,b}"));
        assert!(!matcher(&["{a,b}"]).matches("a"));
    }
}
