//! Parser directives: `# escape=` and `# syntax=` (and `# check=`) at the top of the file.
//!
//! Directives are only recognised before the first instruction, comment or blank line,
//! each at most once; anything else that looks like one is an ordinary comment.

/// The directives a Dockerfile declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# syntax=`: a BuildKit frontend image. Recorded and otherwise ignored: this
    /// builder only has its own frontend.
    pub syntax: Option<String>,
    /// `# check=`: BuildKit lint configuration. Recorded and ignored.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// Recognises directives line by line until the first line that is not one.
#[derive(Debug, Default)]
pub struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
    pub directives: Directives,
}

impl DirectiveParser {
    /// Looks at one physical line (leading blanks already removed). Returns whether it
    /// was a directive, or an error for a repeated directive or a bad escape character.
    pub fn parse_line(&mut self, line: &str) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let rest = rest.trim_start();
        let Some((key, value)) = split_directive(rest) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(format!(
                            "invalid escape token '{value}' does not match ` or \\"
                        ));
                    }
                }
            }
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        Ok(true)
    }
}

/// `name = value` with name `[a-zA-Z][a-zA-Z0-9]*` and a non-empty value, trimmed.
fn split_directive(s: &str) -> Option<(&str, &str)> {
    let name_len = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    if name_len == 0 {
        return None;
    }
    let (name, rest) = s.split_at(name_len);
    let rest = rest.trim_start().strip_prefix('=')?;
    let value = rest.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_only_at_the_top() {
        let mut d = DirectiveParser::default();
        assert_eq!(d.parse_line("# escape=`"), Ok(true));
        assert_eq!(d.parse_line("#syntax = docker/dockerfile:1 "), Ok(true));
        assert_eq!(d.parse_line("# a comment"), Ok(false));
        assert_eq!(d.parse_line("# escape=\\"), Ok(false));
        assert_eq!(d.directives.escape, '`');
        assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    }

    #[test]
    fn bad_directives() {
        let mut d = DirectiveParser::default();
        assert!(d.parse_line("# escape=/").is_err());
        let mut d = DirectiveParser::default();
        assert_eq!(d.parse_line("# syntax=a"), Ok(true));
        assert!(d.parse_line("# SYNTAX=b").is_err());
        let mut d = DirectiveParser::default();
        assert_eq!(d.parse_line("# unknown=x"), Ok(false));
        assert_eq!(d.parse_line("# escape=`"), Ok(false));
    }
}
