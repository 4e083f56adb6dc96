//! COPY/ADD source wildcards, matched the way docker matches them (Go's
//! `filepath.Match` applied component by component, as `filepath.Glob` does).
//!
//! `*` matches any run of characters other than `/` (dot files included, unlike a
//! shell), `?` one such character, `[abc]`, `[a-z]`, `[^a-z]` a character class, and
//! `\` makes the next character literal. A source without any of `*?[\` is taken
//! literally.

use std::io;
use std::path::{Path, PathBuf};

/// Whether `pattern` contains wildcard syntax.
pub fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '\\'])
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    One,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled pattern for one path component.
#[derive(Debug, Clone)]
pub struct ComponentPattern {
    toks: Vec<Tok>,
}

impl ComponentPattern {
    /// Compiles a pattern; malformed classes or a trailing `\` are errors
    /// (`syntax error in pattern`, as Go reports).
    pub fn new(pattern: &str) -> Result<ComponentPattern, String> {
        let err = || format!("syntax error in pattern {pattern:?}");
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        let escaped = |i: &mut usize| -> Result<char, String> {
            let c = *chars.get(*i).ok_or_else(err)?;
            *i += 1;
            if c == '\\' {
                let n = *chars.get(*i).ok_or_else(err)?;
                *i += 1;
                return Ok(n);
            }
            Ok(c)
        };
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' => {
                    i += 1;
                    toks.push(Tok::Star);
                }
                '?' => {
                    i += 1;
                    toks.push(Tok::One);
                }
                '\\' => {
                    toks.push(Tok::Lit(escaped(&mut i)?));
                }
                '[' => {
                    i += 1;
                    let negated = chars.get(i) == Some(&'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        match chars.get(i) {
                            None => return Err(err()),
                            Some(']') if !ranges.is_empty() => {
                                i += 1;
                                break;
                            }
                            Some('-') | Some(']') => return Err(err()),
                            Some(_) => {}
                        }
                        let lo = escaped(&mut i)?;
                        let mut hi = lo;
                        if chars.get(i) == Some(&'-') {
                            i += 1;
                            if matches!(chars.get(i), None | Some(']')) {
                                return Err(err());
                            }
                            hi = escaped(&mut i)?;
                            if hi < lo {
                                return Err(err());
                            }
                        }
                        ranges.push((lo, hi));
                    }
                    toks.push(Tok::Class { negated, ranges });
                }
                c => {
                    i += 1;
                    toks.push(Tok::Lit(c));
                }
            }
        }
        Ok(ComponentPattern { toks })
    }

    /// Whether the pattern matches all of `name` (a single path component).
    pub fn matches(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        match_toks(&self.toks, &chars)
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let Some(t) = toks.first() else {
        return s.is_empty();
    };
    let rest = &toks[1..];
    match t {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|c| *c != '/') && match_toks(rest, &s[1..]),
        Tok::Class { negated, ranges } => {
            s.first().is_some_and(|c| {
                *c != '/' && ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&c)) != *negated
            }) && match_toks(rest, &s[1..])
        }
        Tok::Star => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != '/')
            .any(|i| match_toks(rest, &s[i..])),
    }
}

/// Go's `filepath.Match` for a `/`-separated path: `*` and `?` never match `/`.
pub fn path_matches(pattern: &str, path: &str) -> Result<bool, String> {
    Ok(ComponentPattern::new(pattern)?.matches(path))
}

/// Resolves a COPY/ADD source pattern against the directory `root` (the build
/// context, or a stage's filesystem for `--from`), like Go's `filepath.Glob`: the paths
/// (relative to `root`, sorted per directory) of every existing entry matching it. A
/// pattern without wildcards yields itself if it exists. Leading `/` and `./` refer to
/// `root`; `..` cannot climb above it. Symlinks are not followed out of `root` except as
/// entries themselves.
pub fn glob(root: &Path, pattern: &str) -> io::Result<Vec<PathBuf>> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let cleaned = super::ignore::clean_path(&format!("/{pattern}"));
    let parts: Vec<&str> = cleaned.split('/').filter(|p| !p.is_empty()).collect();
    let mut found = vec![PathBuf::new()];
    for part in parts {
        let mut next = Vec::new();
        if !has_wildcards(part) {
            for base in &found {
                let candidate = base.join(part);
                if root.join(&candidate).symlink_metadata().is_ok() {
                    next.push(candidate);
                }
            }
        } else {
            let pat = ComponentPattern::new(part).map_err(bad)?;
            for base in &found {
                let dir = root.join(base);
                if !dir.is_dir() {
                    continue;
                }
                let mut names: Vec<String> = std::fs::read_dir(&dir)?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| pat.matches(n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            }
        }
        found = next;
        if found.is_empty() {
            break;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_cases() {
        // cases from Go's path.Match tests
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "abc", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^b-d]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a[^a]b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("a[^a][^a][^a]b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "x", Some(true)),
            ("[x\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[\\-x]", "x", Some(true)),
            ("[\\-x]", "a", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("[^bc", "a", None),
            ("a[", "a", None),
            ("a\\", "a", None),
            ("*x", "xxx", Some(true)),
        ];
        for (p, s, want) in cases {
            match want {
                Some(w) => assert_eq!(path_matches(p, s), Ok(*w), "{p} {s}"),
                None => assert!(path_matches(p, s).is_err(), "{p} should be invalid"),
            }
        }
    }

    #[test]
    fn globs_a_context() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "a.txt",
            "b.txt",
            ".hidden.txt",
            "c.md",
            "sub/d.txt",
            "sub/e.md",
            "sub2/f.txt",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        let names = |pat: &str| -> Vec<String> {
            glob(root, pat)
                .unwrap()
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names("*.txt"), [".hidden.txt", "a.txt", "b.txt"]);
        assert_eq!(names("/sub*/*.txt"), ["sub/d.txt", "sub2/f.txt"]);
        assert_eq!(names("./c.md"), ["c.md"]);
        assert_eq!(names("sub"), ["sub"]);
        assert!(names("missing").is_empty());
        assert!(names("nothing*").is_empty());
        assert_eq!(names("../../a.txt"), ["a.txt"]);
        assert_eq!(names("[ab].txt"), ["a.txt", "b.txt"]);
        assert!(glob(root, "[").is_err());
    }
}
