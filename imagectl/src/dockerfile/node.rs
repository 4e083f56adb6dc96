//! The untyped parse tree and its dump notation.
//!
//! This is the level the reference parser's `Node.Dump()` prints: an instruction keyword,
//! its `--flags`, and its arguments as the line parser split them (quotes still in place,
//! variables not yet substituted). `imagectl dockerfile parse` prints it so a user can see
//! exactly how the builder read each line.

use super::quote::{go_quote, go_quote_list};

/// One argument of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A plain word.
    Word(String),
    /// A nested instruction (the trigger of `ONBUILD`).
    Nested(Box<Node>),
}

/// A heredoc attached to a `RUN`, `COPY` or `ADD` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The delimiter word, quotes removed; also the file name for `COPY <<name`.
    pub name: String,
    /// File descriptor written before `<<` (`3<<EOF`), 0 if none.
    pub file_descriptor: u32,
    /// Whether variables in the body get substituted (delimiter not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines.
    pub chomp: bool,
    /// The body exactly as written, every line with its newline.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs removed when the heredoc was `<<-`.
    pub fn chomped_content(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// One instruction as the line parser read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The keyword as written (`RUN`, `run`...).
    pub keyword: String,
    /// `--name=value` flags in order, as written after unquoting.
    pub flags: Vec<String>,
    /// Arguments in order.
    pub args: Vec<Arg>,
    /// The arguments came from a JSON array (exec form).
    pub json: bool,
    /// The whole logical line (continuations joined) the instruction came from.
    pub original: String,
    /// Heredocs whose bodies followed the line.
    pub heredocs: Vec<Heredoc>,
    /// First line of the instruction (1-based).
    pub start_line: usize,
    /// Last line, including continuations and heredoc bodies.
    pub end_line: usize,
}

impl Node {
    /// The keyword in lower case, the form every comparison uses.
    pub fn command(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// The plain word arguments, flattening a nested instruction to its keyword followed
    /// by its arguments (as the reference's `nodeArgs` does).
    pub fn words(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.args {
            match a {
                Arg::Word(w) => out.push(w.clone()),
                Arg::Nested(n) => {
                    out.push(n.keyword.clone());
                    out.extend(n.words());
                }
            }
        }
        out
    }

    /// The nested instruction, for `ONBUILD`.
    pub fn nested(&self) -> Option<&Node> {
        self.args.iter().find_map(|a| match a {
            Arg::Nested(n) => Some(n.as_ref()),
            Arg::Word(_) => None,
        })
    }

    /// The reference dump of this instruction without the surrounding parentheses:
    /// `run "echo hi"`, `copy ["--from=a"] "x" "y"`, `onbuild (run "x")`.
    pub fn dump(&self) -> String {
        let mut s = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            s.push(' ');
            s.push_str(&go_quote_list(&self.flags));
        }
        for a in &self.args {
            s.push(' ');
            match a {
                Arg::Word(w) => s.push_str(&go_quote(w)),
                Arg::Nested(n) => {
                    s.push('(');
                    s.push_str(&n.dump());
                    s.push(')');
                }
            }
        }
        s.trim().to_string()
    }
}
