//! The `key=value,key=value` specs of buildx's flags (`--output`, `--cache-to`, `--cache-from`, `--secret`), parsed
//! one way for all of them, with errors that name the flag and the spec.

use std::collections::HashMap;

use crate::cmd::CliError;

/// The `key=value` fields of one spec of `flag` (`--output`, `--cache-to`, ...), keys lowercased.
pub struct Fields<'a> {
    flag: &'static str,
    spec: &'a str,
    values: HashMap<String, String>,
}

impl<'a> Fields<'a> {
    /// Splits `spec` into its fields.
    pub fn parse(flag: &'static str, spec: &'a str) -> Self {
        let values = spec
            .split(',')
            .map(|field| field.split_once('=').unwrap_or((field, "")))
            .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Self { flag, spec, values }
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// An error about this spec.
    pub fn error(&self, message: String) -> CliError {
        CliError(format!("{} {}: {message}", self.flag, self.spec))
    }

    /// Prints a warning about this spec.
    pub fn warn(&self, message: &str) {
        eprintln!("WARNING: {} {}: {message}", self.flag, self.spec);
    }

    /// The keys given, for refusing unknown ones.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The non-empty value of `key`, else an error asking for `key=WHAT`.
    pub fn required(&self, key: &str, what: &str) -> Result<&str, CliError> {
        self.get(key).filter(|v| !v.is_empty()).ok_or_else(|| self.error(format!("{key}={what} is required")))
    }

    /// A boolean as BuildKit reads it (Go's `strconv.ParseBool`); a key given without a value means true.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, CliError> {
        match self.get(key) {
            None => Ok(default),
            Some("" | "1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(self.error(format!("{key}={other} is not true or false"))),
        }
    }
}
