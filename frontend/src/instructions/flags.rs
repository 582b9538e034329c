//! Instruction flags (`--name=value`), validated the way BuildKit's `BFlags` does.

use crate::suggest::with_suggestion;

/// What kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlagKind {
    /// `--name` or `--name=true|false`.
    Bool,
    /// `--name=value`, at most once.
    String,
    /// `--name=value`, repeatable.
    Strings,
}

/// The flags an instruction accepts.
pub(super) type FlagSpecs = &'static [(&'static str, FlagKind)];

/// Flags parsed against a spec: every value given, by flag name.
#[derive(Debug, Default)]
pub(super) struct Flags {
    values: Vec<(&'static str, String)>,
}

impl Flags {
    /// Validates `raw` (`--name[=value]` words) against `specs`.
    pub fn parse(raw: &[String], specs: FlagSpecs) -> Result<Self, String> {
        let mut flags = Self::default();
        for word in raw {
            let Some(body) = word.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {word}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (body, None),
            };
            let Some(&(name, kind)) = specs.iter().find(|(known, _)| *known == name) else {
                let names: Vec<&str> = specs.iter().map(|(known, _)| *known).collect();
                return Err(with_suggestion(format!("unknown flag: --{name}"), name, &names));
            };
            if kind != FlagKind::Strings && flags.values.iter().any(|(seen, _)| *seen == name) {
                return Err(format!("duplicate flag specified: {name}"));
            }
            let value = match (kind, value) {
                (FlagKind::Bool, None) => "true".to_owned(),
                (FlagKind::Bool, Some(value)) => match value.to_lowercase().as_str() {
                    "true" | "" => "true".to_owned(),
                    "false" => "false".to_owned(),
                    _ => {
                        return Err(format!("expecting boolean value for flag {name}, not: {value}"));
                    }
                },
                (_, None) => return Err(format!("missing a value on flag: {name}")),
                (_, Some(value)) => value.to_owned(),
            };
            flags.values.push((name, value));
        }
        Ok(flags)
    }

    /// The value of a single-valued flag, if given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.values.iter().find(|(seen, _)| *seen == name).map(|(_, value)| value.clone())
    }

    /// Every value of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values.iter().filter(|(seen, _)| *seen == name).map(|(_, value)| value.clone()).collect()
    }

    /// A boolean flag's value, if given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|value| value == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: FlagSpecs = &[("link", FlagKind::Bool), ("from", FlagKind::String), ("mount", FlagKind::Strings)];

    fn parse(raw: &[&str]) -> Result<Flags, String> {
        Flags::parse(&raw.iter().map(|s| s.to_string()).collect::<Vec<_>>(), SPECS)
    }

    #[test]
    fn values_by_kind() {
        let flags = parse(&["--link", "--from=a", "--mount=x", "--mount=y"]).unwrap();
        assert_eq!(flags.bool("link"), Some(true));
        assert_eq!(flags.string("from").as_deref(), Some("a"));
        assert_eq!(flags.strings("mount"), vec!["x", "y"]);
        assert_eq!(parse(&["--link=FALSE"]).unwrap().bool("link"), Some(false));
        assert_eq!(parse(&[]).unwrap().bool("link"), None);
    }

    #[test]
    fn errors_in_buildkit_words() {
        assert_eq!(parse(&["--mont=x"]).unwrap_err(), "unknown flag: --mont (did you mean mount?)");
        assert_eq!(parse(&["--boo"]).unwrap_err(), "unknown flag: --boo");
        assert_eq!(parse(&["--from=a", "--from=b"]).unwrap_err(), "duplicate flag specified: from");
        assert_eq!(parse(&["--from"]).unwrap_err(), "missing a value on flag: from");
        assert_eq!(parse(&["--link=maybe"]).unwrap_err(), "expecting boolean value for flag link, not: maybe");
    }
}
