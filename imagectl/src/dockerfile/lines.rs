//! Reading a Dockerfile into logical lines: parser directives, comments, line
//! continuations and heredoc bodies.
//!
//! Rules, as the reference applies them:
//! - a byte-order mark at the start is dropped;
//! - a line whose first non-blank character is `#` is a comment, only there: a `#`
//!   later in a line is part of the instruction;
//! - an escape character at the end of a line (optionally followed by blanks, and not
//!   itself escaped) joins the next line; the next line's leading whitespace is kept;
//!   comment lines and empty lines inside a continuation are dropped (an empty one is
//!   reported as a warning); a continuation at the end of the file is accepted;
//! - after a RUN/COPY/ADD line announcing heredocs, the following lines up to each
//!   delimiter are the bodies, taken verbatim.

use super::directives::DirectiveParser;
use super::error::ParseError;
use super::node::Node;

/// The physical lines of the input, with their line endings.
pub struct PhysicalLines<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> PhysicalLines<'a> {
    /// Splits `text` after every `\n`, dropping a leading byte-order mark.
    pub fn new(text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        PhysicalLines {
            lines: text.split_inclusive('\n').collect(),
            next: 0,
        }
    }

    /// The next physical line, or `None` at the end.
    pub fn next_line(&mut self) -> Option<&'a str> {
        let l = self.lines.get(self.next).copied();
        if l.is_some() {
            self.next += 1;
        }
        l
    }

    /// How many physical lines have been consumed: the current line number.
    pub fn line_number(&self) -> usize {
        self.next
    }
}

/// Removes the line ending (`\n`, `\r\n`, stray `\r`s).
pub fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// Whether the line is a comment: `#` as its first non-blank character.
pub fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// If `line` ends in a continuation (escape character, then only blanks), returns it
/// without that ending.
pub fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    let body = line.trim_end_matches([' ', '\t']);
    let before = body.strip_suffix(escape)?;
    if before.ends_with(escape) {
        // an escaped escape character is not a continuation
        return None;
    }
    Some(before)
}

/// One instruction's worth of text.
pub struct LogicalLine {
    /// The joined text.
    pub text: String,
    /// Line it starts on (1-based).
    pub start: usize,
    /// An empty line occurred inside the continuation.
    pub had_empty_continuation: bool,
}

/// Reads the next logical line, handling directives, comments and continuations.
/// Returns `Ok(None)` at the end of input.
pub fn next_logical_line(
    input: &mut PhysicalLines<'_>,
    directives: &mut DirectiveParser,
) -> Result<Option<LogicalLine>, ParseError> {
    while let Some(raw) = input.next_line() {
        let token = trim_newline(raw).trim_start();
        directives
            .parse_line(token)
            .map_err(|m| ParseError::new(input.line_number(), m, token))?;
        let escape = directives.directives.escape;
        let first = if is_comment(token) { "" } else { token };
        let start = input.line_number();
        let (mut text, mut done) = match strip_continuation(first, escape) {
            Some(t) => (t.to_string(), false),
            None => (first.to_string(), true),
        };
        if done && text.is_empty() {
            continue;
        }
        let mut had_empty = false;
        while !done {
            let Some(raw) = input.next_line() else { break };
            let token = trim_newline(raw);
            directives
                .parse_line(token)
                .map_err(|m| ParseError::new(input.line_number(), m, token))?;
            if is_comment(token) {
                continue;
            }
            if token.trim_start().is_empty() {
                had_empty = true;
                continue;
            }
            match strip_continuation(token, escape) {
                Some(t) => text.push_str(t),
                None => {
                    text.push_str(token);
                    done = true;
                }
            }
        }
        return Ok(Some(LogicalLine {
            text,
            start,
            had_empty_continuation: had_empty,
        }));
    }
    Ok(None)
}

/// Reads the bodies of `node`'s heredocs from the following lines.
pub fn read_heredoc_bodies(
    input: &mut PhysicalLines<'_>,
    node: &mut Node,
    start: usize,
) -> Result<(), ParseError> {
    for h in &mut node.heredocs {
        let mut terminated = false;
        while let Some(raw) = input.next_line() {
            let mut candidate = trim_newline(raw);
            if h.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == h.name {
                terminated = true;
                break;
            }
            h.content.push_str(raw);
        }
        if !terminated {
            return Err(ParseError::new(
                start,
                format!(
                    "unterminated heredoc (no line {:?} before the end of the file)",
                    h.name
                ),
                node.original.clone(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_detection() {
        assert_eq!(strip_continuation("a \\", '\\'), Some("a "));
        assert_eq!(strip_continuation("a \\  \t", '\\'), Some("a "));
        assert_eq!(strip_continuation("\\", '\\'), Some(""));
        assert_eq!(strip_continuation("a \\\\", '\\'), None);
        assert_eq!(strip_continuation("a `", '`'), Some("a "));
        assert_eq!(strip_continuation("a \\", '`'), None);
    }
}
