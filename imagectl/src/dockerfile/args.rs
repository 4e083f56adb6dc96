//! Per-instruction argument parsing (the reference's "line parsers").
//!
//! Each keyword has its own rules for turning the text after the flags into arguments:
//! JSON-or-string for RUN/CMD/ENTRYPOINT/SHELL, JSON-or-blank-separated for
//! COPY/ADD/VOLUME, key/value pairs for ENV and LABEL, words for ARG, the whole string for
//! USER/WORKDIR/... Quotes are kept at this stage; they are removed by variable
//! substitution when the builder runs the instruction.

use super::node::Arg;
use super::split::split_blanks;

/// What a line parser produced.
#[derive(Debug, Default)]
pub struct Parsed {
    pub args: Vec<Arg>,
    pub json: bool,
}

fn words_to_args(words: Vec<String>) -> Vec<Arg> {
    words.into_iter().map(Arg::Word).collect()
}

/// Splits into words at blanks outside quotes, keeping quotes and escapes in the words.
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let mut ch = if at_end { '\0' } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
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
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                ch = chars[i];
            }
            word.push(ch);
            i += 1;
            continue;
        }
        // in quotes
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            word.push(ch);
            ch = chars[i];
        }
        word.push(ch);
        i += 1;
    }
    words
}

/// ENV and LABEL: `k=v k2="v 2"` (each pair dumped as `"k" "v" "="`) or the legacy
/// `k rest of line` (dumped as `"k" "rest of line" ""`).
pub fn parse_name_val(rest: &str, keyword: &str, escape: char) -> Result<Parsed, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Parsed::default());
    }
    if !words[0].contains('=') {
        let parts = split_blanks(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{keyword} must have two arguments"));
        }
        return Ok(Parsed {
            args: words_to_args(vec![parts[0].clone(), parts[1].clone(), String::new()]),
            json: false,
        });
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                super::quote::go_quote(&w)
            ));
        };
        out.push(k.to_string());
        out.push(v.to_string());
        out.push("=".to_string());
    }
    Ok(Parsed {
        args: words_to_args(out),
        json: false,
    })
}

/// ARG: `name`, `name=value`, several per line.
pub fn parse_name_or_name_val(rest: &str, escape: char) -> Parsed {
    Parsed {
        args: words_to_args(parse_words(rest, escape)),
        json: false,
    }
}

/// FROM, EXPOSE: blank-separated words, no quote handling.
pub fn parse_strings_whitespace_delimited(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed {
        args: words_to_args(split_blanks(rest, 0)),
        json: false,
    }
}

/// USER, WORKDIR, MAINTAINER, STOPSIGNAL: the whole text is the argument.
pub fn parse_string(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed {
        args: vec![Arg::Word(rest.to_string())],
        json: false,
    }
}

/// The outcome of trying to read the arguments as a JSON array.
enum Json {
    Strings(Vec<String>),
    NotJson,
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

fn parse_json(rest: &str) -> Result<Json, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(Json::NotJson);
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(rest) else {
        return Ok(Json::NotJson);
    };
    let serde_json::Value::Array(items) = value else {
        return Ok(Json::NotJson);
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            serde_json::Value::String(s) => out.push(s),
            _ => return Err(NOT_STRINGS.to_string()),
        }
    }
    Ok(Json::Strings(out))
}

/// RUN, CMD, ENTRYPOINT, SHELL: a JSON array of strings (exec form), or else the whole
/// text as one argument (shell form). `CMD ['a']` is not JSON, so it is shell form.
pub fn parse_maybe_json(rest: &str) -> Result<Parsed, String> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    match parse_json(rest)? {
        Json::Strings(s) => Ok(Parsed {
            args: words_to_args(s),
            json: true,
        }),
        Json::NotJson => Ok(parse_string(rest)),
    }
}

/// COPY, ADD, VOLUME: a JSON array of strings, or else blank-separated words.
pub fn parse_maybe_json_to_list(rest: &str) -> Result<Parsed, String> {
    match parse_json(rest)? {
        Json::Strings(s) => Ok(Parsed {
            args: words_to_args(s),
            json: true,
        }),
        Json::NotJson => Ok(parse_strings_whitespace_delimited(rest)),
    }
}

/// HEALTHCHECK: a type word (`CMD`, `NONE`) followed by a RUN-like command.
pub fn parse_health_config(rest: &str) -> Result<Parsed, String> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let typ = &rest[..sep];
    let cmd_text = rest[sep..].trim_start_matches(char::is_whitespace);
    let cmd = parse_maybe_json(cmd_text)?;
    let mut args = vec![Arg::Word(typ.to_string())];
    args.extend(cmd.args);
    Ok(Parsed {
        args,
        json: cmd.json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes() {
        let cases: &[(&str, &[&str])] = &[
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo=bar", &["foo=bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            ("foo bar \"abc xyz\"", &["foo", "bar", "\"abc xyz\""]),
            ("àöû", &["àöû"]),
            ("föo bàr \"âbc xÿz\"", &["föo", "bàr", "\"âbc xÿz\""]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_words(input, '\\'), *want, "{input}");
        }
    }

    #[test]
    fn json_that_is_not_strings_is_an_error() {
        assert!(parse_maybe_json("[1, 2]").is_err());
        assert!(parse_maybe_json("[\"a\", null]").is_err());
        let p = parse_maybe_json("['a']").unwrap();
        assert!(!p.json);
        let p = parse_maybe_json("[\"a\", \"b\"]").unwrap();
        assert!(p.json);
        assert_eq!(p.args.len(), 2);
        let p = parse_maybe_json("[\"a\"] trailing").unwrap();
        assert!(!p.json);
    }
}
