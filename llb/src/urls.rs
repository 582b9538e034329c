//! URLs as they may be shown: credentials never reach a log line, history entry or error message.

/// `url` with any password replaced by `xxxxx` (a user name alone, often a token, is replaced whole).
pub fn redact_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let hidden = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:xxxxx"),
                None => "xxxxx".to_owned(),
            };
            format!("{scheme}://{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// `text` with the credentials of every URL in it redacted (URLs are whitespace-separated words).
pub fn redact_text(text: &str) -> String {
    let mut redacted = text.to_owned();
    for word in text.split_whitespace().filter(|w| w.contains("://")) {
        let safe = redact_credentials(word);
        if safe != word {
            redacted = redacted.replace(word, &safe);
        }
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_credentials("https://user:secret@example.com/a@b"), "https://user:xxxxx@example.com/a@b");
        assert_eq!(redact_credentials("https://token@example.com/x.git"), "https://xxxxx@example.com/x.git");
        assert_eq!(redact_credentials("https://example.com/x?u=a@b"), "https://example.com/x?u=a@b");
        assert_eq!(redact_credentials("git@github.com:moby/buildkit.git"), "git@github.com:moby/buildkit.git");
        assert_eq!(
            redact_text("ADD  https://u:p@h/f /d (https://u:p@h/f)"),
            "ADD  https://u:xxxxx@h/f /d (https://u:xxxxx@h/f)"
        );
    }
}
