//! Converting untyped nodes to typed instructions, with the reference builder's checks
//! and error messages (arity, flags, JSON forms, stage names, ONBUILD triggers).

use std::time::Duration;

use super::duration::parse_go_duration;
use super::flags::{Flags, Kind};
use super::heredoc::parse_heredoc;
use super::instructions::{
    ArgDecl, CommandLine, CopySpec, From, Healthcheck, InlineSource, Instruction, KEYWORDS,
    Onbuild, Run,
};
use super::node::{Heredoc, Node};

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

/// Converts one untyped node to its typed instruction.
pub fn from_node(node: &Node) -> Result<Instruction, String> {
    let cmd = node.command();
    let args = node.words();
    let no_flags = |name: &str| -> Result<(), String> {
        Flags::parse(&node.flags, &[]).map(|_| ()).map_err(|e| {
            if e.starts_with("Unknown flag") {
                format!("{e} ({name} takes no flags)")
            } else {
                e
            }
        })
    };
    match cmd.as_str() {
        "from" => {
            let flags = Flags::parse(&node.flags, &[("platform", Kind::String)])?;
            let name = match args.len() {
                1 => None,
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let n = args[2].to_ascii_lowercase();
                    if !valid_stage_name(&n) {
                        return Err(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            super::quote::go_quote(&args[2])
                        ));
                    }
                    Some(n)
                }
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            Ok(Instruction::From(From {
                image: args[0].clone(),
                platform: flags.string("platform"),
                name,
            }))
        }
        "run" => {
            let flags = Flags::parse(
                &node.flags,
                &[
                    ("mount", Kind::Strings),
                    ("network", Kind::String),
                    ("security", Kind::String),
                ],
            )?;
            Ok(Instruction::Run(Run {
                command: CommandLine::from_node(node),
                heredocs: node.heredocs.clone(),
                mounts: flags.strings("mount"),
                network: flags.string("network"),
                security: flags.string("security"),
            }))
        }
        "cmd" => {
            no_flags("CMD")?;
            Ok(Instruction::Cmd(CommandLine::from_node(node)))
        }
        "entrypoint" => {
            no_flags("ENTRYPOINT")?;
            Ok(Instruction::Entrypoint(CommandLine::from_node(node)))
        }
        "env" | "label" => {
            let upper = cmd.to_ascii_uppercase();
            no_flags(&upper)?;
            if args.is_empty() {
                return Err(at_least_one(&upper));
            }
            if !args.chunks_exact(3).remainder().is_empty() {
                return Err(format!("Bad input to {upper}, too many arguments"));
            }
            let mut pairs = Vec::new();
            for c in args.chunks(3) {
                if c[0].is_empty() {
                    return Err(format!("{upper} names can not be blank"));
                }
                pairs.push((c[0].clone(), c[1].clone()));
            }
            Ok(if cmd == "env" {
                Instruction::Env(pairs)
            } else {
                Instruction::Label(pairs)
            })
        }
        "arg" => {
            no_flags("ARG")?;
            if args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut decls = Vec::new();
            for a in args {
                let decl = match a.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => ArgDecl {
                        name: k.to_string(),
                        default: Some(v.to_string()),
                    },
                    None => ArgDecl {
                        name: a,
                        default: None,
                    },
                };
                decls.push(decl);
            }
            Ok(Instruction::Arg(decls))
        }
        "maintainer" => {
            no_flags("MAINTAINER")?;
            if args.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            Ok(Instruction::Maintainer(args[0].clone()))
        }
        "expose" => {
            no_flags("EXPOSE")?;
            if args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            let mut ports = args;
            ports.sort();
            Ok(Instruction::Expose(ports))
        }
        "volume" => {
            no_flags("VOLUME")?;
            if args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            let mut vols = Vec::new();
            for v in args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            Ok(Instruction::Volume(vols))
        }
        "user" | "workdir" | "stopsignal" => {
            let upper = cmd.to_ascii_uppercase();
            no_flags(&upper)?;
            if args.len() != 1 {
                return Err(exactly_one(&upper));
            }
            let v = args[0].clone();
            Ok(match cmd.as_str() {
                "user" => Instruction::User(v),
                "workdir" => Instruction::Workdir(v),
                _ => Instruction::StopSignal(v),
            })
        }
        "copy" | "add" => copy_or_add(node, &cmd, args),
        "shell" => {
            no_flags("SHELL")?;
            if args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Ok(Instruction::Shell(args))
        }
        "healthcheck" => healthcheck(node, args),
        "onbuild" => onbuild(node),
        _ => Err(unknown_instruction(&node.keyword)),
    }
}

fn unknown_instruction(keyword: &str) -> String {
    let upper = keyword.to_ascii_uppercase();
    let best = KEYWORDS
        .iter()
        .map(|k| (edit_distance(k, &upper), *k))
        .min()
        .filter(|(d, _)| *d <= 1 || (*d == 2 && upper.len() >= 6));
    match best {
        Some((_, k)) => format!("unknown instruction: {keyword} (did you mean {k}?)"),
        None => format!("unknown instruction: {keyword}"),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Stage names: `^[a-z][a-z0-9-_.]*$`.
pub fn valid_stage_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn copy_or_add(node: &Node, cmd: &str, args: Vec<String>) -> Result<Instruction, String> {
    let upper = cmd.to_ascii_uppercase();
    if args.len() < 2 {
        return Err(format!(
            "{upper} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let is_copy = cmd == "copy";
    let accepted: &[(&str, Kind)] = if is_copy {
        &[
            ("chown", Kind::String),
            ("from", Kind::String),
            ("chmod", Kind::String),
            ("link", Kind::Bool),
            ("parents", Kind::Bool),
            ("exclude", Kind::Strings),
        ]
    } else {
        &[
            ("chown", Kind::String),
            ("chmod", Kind::String),
            ("link", Kind::Bool),
            ("checksum", Kind::String),
            ("keep-git-dir", Kind::Bool),
            ("exclude", Kind::Strings),
        ]
    };
    let flags = Flags::parse(&node.flags, accepted)?;
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    let heredoc_of = |w: &str| {
        if node.json {
            None
        } else {
            parse_heredoc(w).ok().flatten()
        }
    };
    if heredoc_of(&dest).is_some() {
        return Err(format!("{upper} cannot accept a heredoc as a destination"));
    }
    let mut spec = CopySpec {
        dest,
        json: node.json,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        excludes: flags.strings("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        ..CopySpec::default()
    };
    for src in srcs {
        match heredoc_of(src) {
            Some(h) => {
                let body = node.heredocs.iter().find(|d| d.name == h.name);
                let data = match body {
                    Some(b) => Heredoc {
                        chomp: h.chomp,
                        ..b.clone()
                    }
                    .chomped_content(),
                    None => String::new(),
                };
                spec.inline.push(InlineSource {
                    name: h.name,
                    data,
                    expand: h.expand,
                });
            }
            None => spec.sources.push(src.clone()),
        }
    }
    Ok(if is_copy {
        Instruction::Copy(spec)
    } else {
        Instruction::Add(spec)
    })
}

fn healthcheck(node: &Node, args: Vec<String>) -> Result<Instruction, String> {
    if args.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let typ = args[0].to_ascii_uppercase();
    let rest = &args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Instruction::Healthcheck(Healthcheck::None));
    }
    let flags = Flags::parse(
        &node.flags,
        &[
            ("interval", Kind::String),
            ("timeout", Kind::String),
            ("start-period", Kind::String),
            ("start-interval", Kind::String),
            ("retries", Kind::String),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            super::quote::go_quote(&typ)
        ));
    }
    if rest.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let test = if node.json {
        CommandLine::Exec(rest.to_vec())
    } else {
        CommandLine::Shell(rest.join(" "))
    };
    let interval = |name: &str| -> Result<Option<Duration>, String> {
        let Some(v) = flags.string(name) else {
            return Ok(None);
        };
        if v.is_empty() {
            return Ok(None);
        }
        let d = parse_go_duration(&v)?;
        if !d.is_zero() && d < Duration::from_millis(1) {
            return Err(format!(
                "Interval {} cannot be less than 1ms",
                super::quote::go_quote(name)
            ));
        }
        Ok(Some(d))
    };
    let retries = match flags.string("retries") {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| {
                format!(
                    "invalid value for --retries: {}",
                    super::quote::go_quote(&v)
                )
            })?;
            if n < 0 {
                return Err(format!("--retries cannot be negative ({n})"));
            }
            Some(u32::try_from(n).map_err(|_| format!("--retries is too large ({n})"))?)
        }
    };
    Ok(Instruction::Healthcheck(Healthcheck::Cmd {
        test,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    }))
}

fn onbuild(node: &Node) -> Result<Instruction, String> {
    Flags::parse(&node.flags, &[])?;
    let Some(trigger) = node.nested() else {
        return Err(at_least_one("ONBUILD"));
    };
    match trigger.command().as_str() {
        "onbuild" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "maintainer" | "from" => {
            return Err(format!(
                "{} isn't allowed as an ONBUILD trigger",
                trigger.keyword.to_ascii_uppercase()
            ));
        }
        _ => {}
    }
    // heredoc bodies belong to the ONBUILD line; the trigger needs them
    let mut trigger = trigger.clone();
    trigger.heredocs = node.heredocs.clone();
    let typed = from_node(&trigger)?;
    let trimmed = node.original.trim_start();
    let mut expression = trimmed
        .get(..7)
        .filter(|k| k.eq_ignore_ascii_case("onbuild"))
        .map(|_| trimmed[7..].trim_start().to_string())
        .unwrap_or_else(|| trimmed.to_string());
    for h in &node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Instruction::Onbuild(Onbuild {
        expression,
        trigger: Box::new(typed),
    }))
}
