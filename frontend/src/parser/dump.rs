//! BuildKit's `Node.Dump()` text format, byte for byte, and Go's `strconv.Quote`.

use super::ast::{Ast, Node};

impl Ast {
    /// BuildKit's dump: one `(keyword ["flags"] "arg"...)` line per instruction, no trailing newline.
    pub fn dump(&self) -> String {
        self.nodes.iter().map(Node::dump).collect::<Vec<_>>().join("\n")
    }
}

impl Node {
    /// This instruction in BuildKit's dump format, parentheses included.
    pub fn dump(&self) -> String {
        let mut out = format!("({}", self.keyword);
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            out.push_str(&format!(" [{}]", flags.join(" ")));
        }
        for arg in &self.args {
            out.push(' ');
            out.push_str(&go_quote(arg));
        }
        if let Some(next) = &self.next {
            out.push(' ');
            out.push_str(&next.dump());
        }
        out.push(')');
        out
    }
}

/// Quotes `text` exactly as Go's `strconv.Quote` does.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint`: graphic characters and the ASCII space. Rust's standard library has no
/// general-category tables, so unassigned code points count as printable; the common non-graphic ones are listed.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let code = c as u32;
    let format_or_private = matches!(code,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x2028..=0x202e
        | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xf0000..);
    !c.is_control() && !c.is_whitespace() && !format_or_private
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
        assert_eq!(go_quote("\u{7}\u{8}\u{c}\n\r\t\u{b}"), r#""\a\b\f\n\r\t\v""#);
        assert_eq!(go_quote("☃ é ' \u{a0} \u{feff} \u{f0000}"), "\"☃ é ' \\u00a0 \\ufeff \\U000f0000\"");
    }
}
