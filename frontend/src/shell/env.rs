//! Variable lookup for the lexer, and the ordered map the lowering keeps a stage's environment in.

/// Where the lexer looks variables up. Names are case-sensitive.
pub trait Env {
    /// The value of `name`, or `None` when it is not set (set but empty is `Some("")`).
    fn get(&self, name: &str) -> Option<&str>;
}

/// An insertion-ordered variable map; setting an existing name replaces its value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvMap {
    entries: Vec<(String, String)>,
}

impl EnvMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; a later value for the same name wins but keeps the first position.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.entries.iter_mut().find(|(existing, _)| *existing == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// The variables in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// How many variables are set.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no variable is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Env for EnvMap {
    fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(existing, _)| existing == name).map(|(_, value)| value.as_str())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut map = Self::new();
        for (name, value) in pairs {
            map.insert(name, value);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_value_wins_in_first_position() {
        let map: EnvMap = [("A", "1"), ("B", "2"), ("A", "3")].into_iter().collect();
        assert_eq!(map.iter().collect::<Vec<_>>(), vec![("A", "3"), ("B", "2")]);
        assert_eq!(map.get("A"), Some("3"));
        assert_eq!(map.get("a"), None);
        assert_eq!(map.len(), 2);
    }
}
