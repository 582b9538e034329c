//! `--chmod` values: an octal mode, or symbolic clauses as chmod(1) takes them (`u+x`, `go=rx`, `a-w,+X`),
//! applied to each copied entry's own mode.

use crate::error::{Error, Result};

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chmod {
    /// Every entry gets this mode.
    Octal(u32),
    /// Each clause changes the entry's mode in turn.
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    /// Permission bits of the users named (`u`, `g`, `o`; all for `a` or none).
    who: u32,
    /// `+`, `-` or `=`.
    op: char,
    /// The letters after the operator.
    perms: String,
}

impl Chmod {
    /// Parses `--chmod`'s value.
    pub(crate) fn parse(value: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::Invalid { what: "--chmod", value: value.to_owned(), reason: reason.into() };
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return u32::from_str_radix(value, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Self::Octal)
                .ok_or_else(|| invalid("not an octal mode up to 7777"));
        }
        let mut clauses = Vec::new();
        for clause in value.split(',') {
            let at = clause.find(['+', '-', '=']).ok_or_else(|| invalid("a clause lacks +, - or ="))?;
            let (who, rest) = clause.split_at(at);
            let mut mask = 0;
            for c in who.chars() {
                mask |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(invalid("who must be u, g, o or a")),
                };
            }
            let (op, perms) = rest.split_at(1);
            if !perms.chars().all(|c| "rwxXst".contains(c)) {
                return Err(invalid("permissions must be r, w, x, X, s or t"));
            }
            let who = if mask == 0 { 0o7777 } else { mask };
            clauses.push(Clause { who, op: op.chars().next().expect("split at an operator"), perms: perms.into() });
        }
        Ok(Self::Symbolic(clauses))
    }

    /// The mode an entry with mode `current` (a directory if `is_dir`) gets.
    pub(crate) fn apply(&self, current: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Self::Octal(mode) => return *mode,
            Self::Symbolic(clauses) => clauses,
        };
        clauses.iter().fold(current & 0o7777, |mode, clause| {
            let mut bits = 0;
            for c in clause.perms.chars() {
                bits |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    // X: execute only for directories or what someone may already execute.
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
            }
            let bits = bits & clause.who;
            match clause.op {
                '+' => mode | bits,
                '-' => mode & !bits,
                _ => (mode & !clause.who) | bits,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic_modes() {
        assert_eq!(Chmod::parse("755").unwrap().apply(0o600, false), 0o755);
        assert_eq!(Chmod::parse("0").unwrap().apply(0o644, false), 0);
        assert_eq!(Chmod::parse("u+x").unwrap().apply(0o644, false), 0o744);
        assert_eq!(Chmod::parse("go-w,a+r").unwrap().apply(0o666, false), 0o644);
        assert_eq!(Chmod::parse("u=rwx,go=rx").unwrap().apply(0o600, false), 0o755);
        assert_eq!(Chmod::parse("+X").unwrap().apply(0o644, true), 0o755);
        assert_eq!(Chmod::parse("+X").unwrap().apply(0o644, false), 0o644);
        assert!(Chmod::parse("8").is_err());
        assert!(Chmod::parse("z+x").is_err());
        assert!(Chmod::parse("u+q").is_err());
    }
}
