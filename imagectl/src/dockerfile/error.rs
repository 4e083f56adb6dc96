//! The one error type a broken Dockerfile produces.
//!
//! Every problem the parser finds is reported with the line it starts on, what is wrong
//! and the offending text, because that is what a user needs to fix the file without
//! guessing which of several similar instructions the builder objected to.

use std::fmt;

/// A Dockerfile could not be read.
///
/// `Display` renders `line N: <what is wrong>: <offending text>` (the text part is left out
/// when there is none, e.g. for an empty file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line on which the offending instruction (or directive) starts.
    pub line: usize,
    /// What is wrong, in the reference builder's words where it has some.
    pub message: String,
    /// The offending source text, trimmed; may be empty.
    pub text: String,
}

impl ParseError {
    /// Builds an error for `line` with a message and the offending text.
    pub fn new(line: usize, message: impl Into<String>, text: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
            text: text.into().trim().to_string(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.message, self.text)
        }
    }
}

/// Variable substitution failed (bad `${...}` syntax, unmatched quote, `${v:?msg}` on an
/// unset variable).
///
/// The builder wraps this into its own error together with the instruction's line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {message}")]
pub struct ExpandError {
    /// The word that was being expanded, as written.
    pub word: String,
    /// What is wrong with it.
    pub message: String,
}
