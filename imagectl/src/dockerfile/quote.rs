//! Go's `strconv.Quote`, which the reference parser's dump uses for every argument.
//!
//! Matching it byte for byte lets users diff `imagectl dockerfile parse` against
//! `buildkit`'s dumper output, so the escaping rules follow Go exactly: the short escapes
//! `\a \b \f \n \r \t \v \\ \"`, `\xNN` for other ASCII control bytes, and `\uNNNN` /
//! `\UNNNNNNNN` for non-printable characters beyond ASCII.

use std::fmt::Write;

/// Quotes `s` the way Go's `strconv.Quote` does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII
/// space. Without Unicode category tables this treats every assigned character outside
/// the control, space, format and private-use groups as printable, which is exact for
/// all assigned characters that real Dockerfiles contain; unassigned code points (which
/// Go escapes) are printed as they are.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !(is_format(u) || is_private_use(u) || is_noncharacter(u))
}

/// Unicode general category Cf (format characters).
fn is_format(u: u32) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
}

/// Unicode general category Co (private use).
fn is_private_use(u: u32) -> bool {
    (0xE000..=0xF8FF).contains(&u)
        || (0xF0000..=0xFFFFD).contains(&u)
        || (0x100000..=0x10FFFD).contains(&u)
}

/// Noncharacters, which are unassigned (Cn) by definition.
fn is_noncharacter(u: u32) -> bool {
    (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE
}

/// Go's `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("plain"), r#""plain""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("\t\n\r\u{7}\u{8}\u{b}\u{c}"),
            r#""\t\n\r\a\b\v\f""#
        );
        assert_eq!(go_quote("\u{0}\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
        assert_eq!(go_quote("\u{a0}\u{85}"), r#""\u00a0\u0085""#);
        assert_eq!(go_quote("\u{200b}\u{feff}"), r#""\u200b\ufeff""#);
        assert_eq!(go_quote("\u{e0001}"), r#""\U000e0001""#);
        assert_eq!(go_quote("안녕 ü €"), "\"안녕 ü €\"");
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(
            go_quote_list(&["--a=1".into(), "--b".into()]),
            r#"["--a=1" "--b"]"#
        );
    }
}
