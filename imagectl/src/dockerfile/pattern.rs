//! The shell wildcard patterns of `${v#p}`, `${v%p}` and `${v/p/r}`.
//!
//! buildkit turns these into regular expressions; here they are matched directly: `*` is
//! any run of characters, `?` one character (neither crosses a newline, as Go's `.` does
//! not), `\*`, `\?` and `\\` are literal, and a `\` before `}` or `/` only protected that
//! character inside `${...}` and is dropped.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

/// A compiled shell pattern.
#[derive(Debug, Clone)]
pub struct ShellPattern {
    toks: Vec<Tok>,
}

impl ShellPattern {
    /// Compiles `pattern`; an escape of anything but `*`, `?`, `\`, `}` or `/` is an error,
    /// as in the reference.
    pub fn compile(pattern: &str) -> Result<ShellPattern, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match chars.get(i) {
                    Some('}') | Some('/') => {}
                    Some(&n @ ('*' | '?' | '\\')) => {
                        toks.push(Tok::Lit(n));
                        i += 1;
                    }
                    Some(n) => return Err(format!("invalid escape '\\{n}'")),
                    None => return Err("invalid escape '\\'".to_string()),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(ShellPattern { toks })
    }

    /// Whether the pattern matches all of `s`.
    pub fn matches(&self, s: &[char]) -> bool {
        match_from(&self.toks, s)
    }

    /// `${v#p}` / `${v##p}`: removes the shortest (or longest, when `greedy`) prefix that
    /// matches.
    pub fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let lens: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new((0..=chars.len()).rev())
        } else {
            Box::new(0..=chars.len())
        };
        for n in lens {
            if self.matches(&chars[..n]) {
                return chars[n..].iter().collect();
            }
        }
        value.to_string()
    }

    /// `${v%p}` / `${v%%p}`: removes the shortest (or longest) matching suffix.
    pub fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let len = chars.len();
        let lens: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new((0..=len).rev())
        } else {
            Box::new(0..=len)
        };
        for n in lens {
            if self.matches(&chars[len - n..]) {
                return chars[..len - n].iter().collect();
            }
        }
        value.to_string()
    }

    /// The leftmost match at or after `from`, longest at that position: `(start, end)`.
    fn find(&self, chars: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=chars.len()).find_map(|start| {
            (start..=chars.len())
                .rev()
                .find(|&end| self.matches(&chars[start..end]))
                .map(|end| (start, end))
        })
    }

    /// `${v/p/r}` and `${v//p/r}`: replaces the first (or every) match. Empty matches
    /// right after a previous match are skipped, as Go's `ReplaceAllString` does.
    pub fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        let mut last_end: Option<usize> = None;
        while pos <= chars.len() {
            let Some((s, e)) = self.find(&chars, pos) else {
                break;
            };
            out.extend(&chars[pos..s]);
            if s == e && last_end == Some(s) {
                // empty match abutting the previous one: not a match
                if s < chars.len() {
                    out.push(chars[s]);
                }
                pos = s + 1;
                continue;
            }
            out.push_str(replacement);
            last_end = Some(e);
            if !all {
                pos = e;
                break;
            }
            if e == s {
                if s < chars.len() {
                    out.push(chars[s]);
                }
                pos = s + 1;
            } else {
                pos = e;
            }
        }
        if pos <= chars.len() {
            out.extend(&chars[pos..]);
        }
        out
    }
}

fn match_from(toks: &[Tok], s: &[char]) -> bool {
    match toks.first() {
        None => s.is_empty(),
        Some(Tok::Lit(c)) => s.first() == Some(c) && match_from(&toks[1..], &s[1..]),
        Some(Tok::Any) => {
            matches!(s.first(), Some(c) if *c != '\n') && match_from(&toks[1..], &s[1..])
        }
        Some(Tok::Star) => {
            let mut i = 0;
            loop {
                if match_from(&toks[1..], &s[i..]) {
                    return true;
                }
                if i >= s.len() || s[i] == '\n' {
                    return false;
                }
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_all_with_empty_pattern_inserts_everywhere() {
        let p = ShellPattern::compile("").unwrap();
        assert_eq!(p.replace("ab", "-", true), "-a-b-");
        assert_eq!(p.replace("ab", "-", false), "-ab");
        let x = ShellPattern::compile("x*").unwrap();
        assert_eq!(x.replace("axxbx", "Y", true), "aY");
        let y = ShellPattern::compile("x?").unwrap();
        assert_eq!(y.replace("axxbxc", "Y", true), "aYbY");
    }

    #[test]
    fn invalid_escapes() {
        for p in ["\\", "\\x", "\\\\\\"] {
            assert!(ShellPattern::compile(p).is_err(), "{p}");
        }
    }
}
