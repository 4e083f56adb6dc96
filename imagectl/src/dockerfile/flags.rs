//! The `--name=value` flags an instruction accepts.
//!
//! Each instruction declares its flags; anything else is an error naming the flag, so a
//! typo such as `COPY --chwon=...` fails at parse time instead of being ignored.

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, once.
    String,
    /// `--mount=...`, repeatable.
    Strings,
}

/// The flags given to one instruction, checked against the ones it accepts.
#[derive(Debug, Default)]
pub struct Flags {
    values: Vec<(String, Kind, Vec<String>)>,
}

impl Flags {
    /// Checks `given` (as `--name[=value]`) against `accepted`.
    pub fn parse(given: &[String], accepted: &[(&str, Kind)]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        for (name, kind) in accepted {
            flags.values.push((name.to_string(), *kind, Vec::new()));
        }
        for arg in given {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(format!("Arg should start with -- : {arg}"));
            };
            if body.is_empty() {
                break;
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(slot) = flags.values.iter_mut().find(|(n, _, _)| n == name) else {
                return Err(format!("Unknown flag: {name}"));
            };
            if slot.1 != Kind::Strings && !slot.2.is_empty() {
                return Err(format!("Duplicate flag specified: {name}"));
            }
            match slot.1 {
                Kind::Bool => {
                    let v = match value {
                        None => "true".to_string(),
                        Some("") => return Err(format!("Missing a value on flag: {name}")),
                        Some(v)
                            if v.eq_ignore_ascii_case("true")
                                || v.eq_ignore_ascii_case("false") =>
                        {
                            v.to_ascii_lowercase()
                        }
                        Some(v) => {
                            return Err(format!(
                                "Expecting boolean value for flag {name}, not: {v}"
                            ));
                        }
                    };
                    slot.2.push(v);
                }
                Kind::String | Kind::Strings => match value {
                    None => return Err(format!("Missing a value on flag: {name}")),
                    Some(v) => slot.2.push(v.to_string()),
                },
            }
        }
        Ok(flags)
    }

    fn get(&self, name: &str) -> &[String] {
        self.values
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// The value of a string flag, if given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).first().cloned()
    }

    /// Every value of a repeatable flag.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.get(name).to_vec()
    }

    /// A boolean flag (false when not given).
    pub fn bool(&self, name: &str) -> bool {
        self.get(name).first().is_some_and(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flag_rules() {
        let acc = [
            ("from", Kind::String),
            ("link", Kind::Bool),
            ("mount", Kind::Strings),
        ];
        let f = Flags::parse(&s(&["--from=a", "--link", "--mount=x", "--mount=y"]), &acc).unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.strings("mount"), ["x", "y"]);
        assert_eq!(
            Flags::parse(&s(&["--nope=1"]), &acc).unwrap_err(),
            "Unknown flag: nope"
        );
        assert_eq!(
            Flags::parse(&s(&["--from"]), &acc).unwrap_err(),
            "Missing a value on flag: from"
        );
        assert_eq!(
            Flags::parse(&s(&["--from=a", "--from=b"]), &acc).unwrap_err(),
            "Duplicate flag specified: from"
        );
        assert!(Flags::parse(&s(&["--link=maybe"]), &acc).is_err());
        assert!(
            !Flags::parse(&s(&["--link=FALSE"]), &acc)
                .unwrap()
                .bool("link")
        );
    }
}
