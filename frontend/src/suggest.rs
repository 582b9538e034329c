//! "did you mean ...?" hints for misspelled instructions, flags, mount keys and mount types.

/// Appends ` (did you mean X?)` to `message` when one of `options` is within two edits of `value`
/// (compared case-insensitively, as BuildKit does). The option is shown as written in `options`.
pub(crate) fn with_suggestion(message: String, value: &str, options: &[&str]) -> String {
    let value = value.to_lowercase();
    let closest = options
        .iter()
        .map(|option| (edit_distance(&value, &option.to_lowercase()), option))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((_, option)) => format!("{message} (did you mean {option}?)"),
        None => message,
    }
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_options_only() {
        let options = ["ENTRYPOINT", "RUN"];
        assert_eq!(with_suggestion("x".into(), "FNTRYPOINT", &options), "x (did you mean ENTRYPOINT?)");
        assert_eq!(with_suggestion("x".into(), "tmp", &["tmpfs", "bind"]), "x (did you mean tmpfs?)");
        assert_eq!(with_suggestion("x".into(), "banana", &options), "x");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
