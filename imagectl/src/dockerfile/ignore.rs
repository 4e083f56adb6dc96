//! `.dockerignore`: which files of the build context COPY and ADD cannot see.
//!
//! Follows docker's rules (moby/patternmatcher and its `ignorefile` reader):
//! - one pattern per line; a line starting with `#` is a comment; blank lines are
//!   skipped; surrounding whitespace is trimmed;
//! - patterns are cleaned like Go's `filepath.Clean` (`./a/../b` is `b`) and a leading
//!   `/` is dropped: patterns are always relative to the context root;
//! - `*` matches any run of characters except `/`, `?` one character except `/`,
//!   `[a-z]` / `[^a-z]` a character class, `\` escapes the next character;
//! - `**` matches any number of directories (including none): `**/*.go`, `a/**/b`;
//!   a trailing `/**` matches everything below a directory;
//! - a path is excluded when it or one of its parent directories matches;
//! - `!pattern` re-includes what earlier patterns excluded; the last matching pattern
//!   wins.

/// A malformed `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid .dockerignore pattern {pattern:?}: {message}")]
pub struct IgnoreError {
    /// The pattern as read.
    pub pattern: String,
    /// What is wrong.
    pub message: String,
}

/// Go's `path.Clean` for `/`-separated paths.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Reads the patterns of a `.dockerignore` file (docker's `ignorefile.ReadAll`).
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = clean_path(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        out.push(if invert { format!("!{p}") } else { p });
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**` followed by more pattern: `(.*/)?`
    Dirs,
    /// `**` at the end, after other wildcards: `.*`
    Rest,
    /// `[...]`
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Tok>),
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    kind: Kind,
}

fn bad(pattern: &str, message: &str) -> IgnoreError {
    IgnoreError {
        pattern: pattern.to_string(),
        message: message.to_string(),
    }
}

fn compile(p: &str) -> Result<Kind, IgnoreError> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut detected = Detected::Exact;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        let at_start = first;
        first = false;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        toks.push(Tok::Rest);
                        detected = Detected::Regexp;
                    }
                } else {
                    toks.push(Tok::Dirs);
                    detected = Detected::Regexp;
                }
                if at_start {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                detected = Detected::Regexp;
            }
            '?' => {
                toks.push(Tok::One);
                detected = Detected::Regexp;
            }
            '\\' => match chars.get(i) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 1;
                    detected = Detected::Regexp;
                }
                None => return Err(bad(p, "trailing backslash")),
            },
            '[' => {
                let mut negated = false;
                if matches!(chars.get(i), Some('^')) {
                    negated = true;
                    i += 1;
                }
                let mut items = Vec::new();
                let mut closed = false;
                while i < chars.len() {
                    let mut c = chars[i];
                    i += 1;
                    if c == ']' && !items.is_empty() {
                        closed = true;
                        break;
                    }
                    if c == '\\' {
                        c = *chars
                            .get(i)
                            .ok_or_else(|| bad(p, "unterminated character class"))?;
                        i += 1;
                    }
                    let mut hi = c;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|n| *n != ']') {
                        hi = chars[i + 1];
                        i += 2;
                        if hi == '\\' {
                            hi = *chars
                                .get(i)
                                .ok_or_else(|| bad(p, "unterminated character class"))?;
                            i += 1;
                        }
                        if hi < c {
                            return Err(bad(p, "invalid character range"));
                        }
                    }
                    items.push((c, hi));
                }
                if !closed {
                    return Err(bad(p, "unterminated character class"));
                }
                toks.push(Tok::Class { negated, items });
                detected = Detected::Regexp;
            }
            ']' => return Err(bad(p, "unmatched ]")),
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact(p.to_string()),
        Detected::Prefix => Kind::Prefix(p[..p.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(p[2..].to_string()),
        Detected::Regexp => Kind::Tokens(toks),
    })
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let Some(t) = toks.first() else {
        return s.is_empty();
    };
    let rest = &toks[1..];
    match t {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|c| *c != '/') && match_toks(rest, &s[1..]),
        Tok::Class { negated, items } => {
            s.first()
                .is_some_and(|c| items.iter().any(|(lo, hi)| (lo..=hi).contains(&c)) != *negated)
                && match_toks(rest, &s[1..])
        }
        Tok::Star => {
            for i in 0..=s.len() {
                if match_toks(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == '/' {
                    return false;
                }
            }
            false
        }
        Tok::Rest => true,
        Tok::Dirs => {
            if match_toks(rest, s) {
                return true;
            }
            (0..s.len()).any(|i| s[i] == '/' && match_toks(rest, &s[i + 1..]))
        }
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact(p) => path == p,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Kind::Tokens(t) => {
                let chars: Vec<char> = path.chars().collect();
                match_toks(t, &chars)
            }
        }
    }
}

/// Compiled `.dockerignore` patterns.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

impl IgnoreMatcher {
    /// Compiles patterns as returned by [`read_patterns`].
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<IgnoreMatcher, IgnoreError> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean_path(p);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err(bad("!", "illegal exclusion pattern: \"!\""));
                }
                p.remove(0);
            }
            // paths are matched relative to the context root, so patterns are too
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
            out.push(Pattern {
                exclusion,
                kind: compile(&p)?,
            });
        }
        Ok(IgnoreMatcher { patterns: out })
    }

    /// Reads and compiles the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<IgnoreMatcher, IgnoreError> {
        IgnoreMatcher::new(&read_patterns(text))
    }

    /// No patterns: nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Some pattern starts with `!`: a walker must then look inside excluded
    /// directories, because something below may be re-included.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context root, `/`-separated) is ignored: it or
    /// a parent directory matches, and no later `!` pattern re-includes it.
    pub fn matches(&self, path: &str) -> bool {
        let path = clean_path(path.trim_start_matches('/'));
        if path == "." {
            return false;
        }
        let dirs: Vec<&str> = match path.rsplit_once('/') {
            Some((parent, _)) => parent.split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut m = pattern.matches(&path);
            if !m {
                m = (1..=dirs.len()).any(|n| pattern.matches(&dirs[..n].join("/")));
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str], path: &str) -> bool {
        IgnoreMatcher::new(patterns).unwrap().matches(path)
    }

    #[test]
    fn reads_like_docker() {
        let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            read_patterns(text),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
        assert!(IgnoreMatcher::parse(text).is_err());
        assert_eq!(read_patterns("./a/../b\n  c/  \n"), ["b", "c"]);
    }

    #[test]
    fn matching_rules() {
        // cases from moby/patternmatcher's tests
        assert!(m(&["**"], "file"));
        assert!(m(&["**"], "file/"));
        assert!(m(&["**/"], "file"));
        assert!(m(&["**/"], "file/"));
        assert!(m(&["**/**"], "file"));
        assert!(m(&["dir/**"], "dir/file"));
        assert!(m(&["dir/**/"], "dir/file"));
        assert!(m(&["dir/**/**"], "dir/file"));
        assert!(m(&["dir/**/**"], "dir/file/"));
        assert!(m(&["**/dir"], "dir"));
        assert!(m(&["**/dir/file"], "dir/file"));
        assert!(m(&["**/dir2/*"], "dir/dir2/file"));
        assert!(m(&["**/dir2/**"], "dir/dir2/dir3/file"));
        assert!(m(&["**file"], "file"));
        assert!(m(&["**file"], "dir/file"));
        assert!(m(&["**/file"], "dir/dir/file"));
        assert!(m(&["**/file*"], "dir/dir/file"));
        assert!(m(&["**/file*"], "dir/dir/file.txt"));
        assert!(m(&["**/file*txt"], "dir/dir/file.txt"));
        assert!(!m(&["**/file*.txt"], "dir/dir/file.go"));
        assert!(m(&["**/**/*.txt"], "dir/dir/file.txt"));
        assert!(!m(&["**/**/*.txt2"], "dir/dir/file.txt"));
        assert!(m(&["**/*.txt"], "file.txt"));
        assert!(m(&["**/**/*.txt"], "file.txt"));
        assert!(m(&["a**/*.txt"], "a/file.txt"));
        assert!(m(&["a**/*.txt"], "a/dir/file.txt"));
        assert!(m(&["a**/*.txt"], "a/dir/dir/file.txt"));
        assert!(!m(&["a/*.txt"], "a/dir/file.txt"));
        assert!(m(&["a/*.txt"], "a/file.txt"));
        assert!(m(&["a/*.txt**"], "a/file.txt"));
        assert!(m(&["a[b-d]e"], "ace"));
        assert!(!m(&["a[b-d]e"], "aae"));
        assert!(m(&["a[^b-d]e"], "aze"));
        assert!(m(&[".*"], ".foo"));
        assert!(!m(&[".*"], "foo"));
        assert!(m(&["abc.def"], "abc.def"));
        assert!(!m(&["abc.def"], "abcZdef"));
        assert!(m(&["abc?def"], "abcZdef"));
        assert!(!m(&["abc?def"], "abc/def"));
        assert!(!m(&["**/foo/bar"], "foo/barbar"));
        assert!(m(&["abc/**"], "abc/def/ghi"));
        assert!(!m(&["abc/**"], "abc"));
        assert!(m(&["a\\*b"], "a*b"));
        assert!(!m(&["a\\*b"], "axb"));
    }

    #[test]
    fn exceptions_and_parents() {
        let p = [
            "docs",
            "!docs/keep.md",
            "*.log",
            "build/**",
            "!build/out.bin",
        ];
        assert!(m(&p, "docs/a.md"));
        assert!(!m(&p, "docs/keep.md"));
        assert!(m(&p, "docs"));
        assert!(m(&p, "x.log"));
        assert!(!m(&p, "dir/x.log"));
        assert!(m(&p, "build/a/b"));
        assert!(!m(&p, "build/out.bin"));
        assert!(!m(&p, "src/main.rs"));
        assert!(m(&["dir"], "dir/sub/file"));
        assert!(m(&["**/*.go", "!vendor/**"], "a/b.go"));
        assert!(!m(&["**/*.go", "!vendor/**"], "vendor/b.go"));
        assert!(IgnoreMatcher::new(&["!docs"]).unwrap().has_exclusions());
        assert!(IgnoreMatcher::new(&["a[b"]).is_err());
        assert!(!m(&["*"], "."));
        assert!(m(&["/abs/path"], "/abs/path"));
        assert!(m(&["./rel"], "./rel"));
    }
}
