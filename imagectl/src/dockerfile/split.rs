//! Splitting a logical line into keyword, `--flags` and the rest.

/// The blanks the reference splits on (`[\t\v\f\r ]`; a newline is not one of them).
pub fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits `s` on runs of blanks, at most `limit` parts (0 = no limit), like Go's
/// `regexp.Split` with the reference's whitespace expression.
pub fn split_blanks(s: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        if limit != 0 && parts.len() + 1 == limit {
            parts.push(rest.to_string());
            return parts;
        }
        match rest.find(is_blank) {
            None => {
                parts.push(rest.to_string());
                return parts;
            }
            Some(i) => {
                parts.push(rest[..i].to_string());
                rest = rest[i..].trim_start_matches(is_blank);
            }
        }
    }
}

/// The keyword (as written), the builder flags, and the remaining argument text
/// (trimmed).
pub fn split_command(line: &str) -> (String, Vec<String>, String) {
    let parts = split_blanks(line.trim(), 2);
    let cmd = parts[0].clone();
    let (args, flags) = match parts.get(1) {
        Some(rest) => extract_builder_flags(rest),
        None => (String::new(), Vec::new()),
    };
    (cmd, flags, args.trim().to_string())
}

/// Takes the leading `--name[=value]` words off `line`. Quotes and `\` inside a flag
/// are processed (`--chown="a b"` gives `--chown=a b`); a lone `--` ends the flags.
pub fn extract_builder_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = if at_end { '\0' } else { chars[i].1 };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            let next_is_dash = chars.get(i + 1).map(|c| c.1) == Some('-');
            if ch != '-' || !next_is_dash {
                return (line[chars[i].0..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[chars[i].0..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
            if ch == '\\' {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                i += 1;
                word.push(chars[i].1);
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            continue;
        }
        // inside quotes
        if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        if ch == '\\' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            word.push(chars[i].1);
            i += 1;
            continue;
        }
        word.push(ch);
        i += 1;
    }
    (String::new(), words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_taken_off_the_front() {
        let (c, f, a) = split_command("COPY --from=build --chown=\"a b\" src /dst");
        assert_eq!(c, "COPY");
        assert_eq!(f, vec!["--from=build", "--chown=a b"]);
        assert_eq!(a, "src /dst");
        let (_, f, a) = split_command("RUN -- --not-a-flag");
        assert!(f.is_empty());
        assert_eq!(a, "--not-a-flag");
        let (_, f, a) = split_command("HEALTHCHECK --interval=5s");
        assert_eq!(f, vec!["--interval=5s"]);
        assert_eq!(a, "");
        let (c, f, a) = split_command("  CMD\t  ");
        assert_eq!((c.as_str(), f.len(), a.as_str()), ("CMD", 0, ""));
    }

    #[test]
    fn splits_on_blanks() {
        assert_eq!(split_blanks("a \t b  c", 0), vec!["a", "b", "c"]);
        assert_eq!(split_blanks("a \t b  c", 2), vec!["a", "b  c"]);
    }
}
