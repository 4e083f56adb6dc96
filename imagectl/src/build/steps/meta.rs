//! Metadata instructions: they change only the image config and add an `empty_layer`
//! history entry whose `created_by` reads like docker's classic builder.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::history::{go_list, nop, nop_single};
use super::super::stage::StageState;
use crate::dockerfile::{Healthcheck, Instruction};

/// Applies a metadata instruction to `state`'s config and returns its `created_by`;
/// `None` for instructions that are not metadata (RUN, COPY, ADD, FROM). WORKDIR is
/// applied here too (the caller creates the directory).
pub fn apply(state: &mut StageState, instr: &Instruction) -> Result<Option<String>, String> {
    let shell = state.shell();
    Ok(Some(match instr {
        Instruction::Env(pairs) => {
            for (k, v) in pairs {
                state.set_env(k, v);
            }
            nop(&format!("ENV {}", kv(pairs)))
        }
        Instruction::Label(pairs) => {
            let labels = state.container().labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                labels.insert(k.clone(), v.clone());
            }
            nop(&format!("LABEL {}", kv(pairs)))
        }
        Instruction::Maintainer(m) => {
            state.config.author = Some(m.clone());
            nop(&format!("MAINTAINER {m}"))
        }
        Instruction::Expose(ports) => {
            let mut added = Vec::new();
            for p in ports {
                added.extend(expand_port(p)?);
            }
            let map = state
                .container()
                .exposed_ports
                .get_or_insert_with(BTreeMap::new);
            for p in &added {
                map.insert(p.clone(), json!({}));
            }
            nop(&format!("EXPOSE {}", added.join(" ")))
        }
        Instruction::Volume(paths) => {
            let map = state.container().volumes.get_or_insert_with(BTreeMap::new);
            for p in paths {
                if p.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                map.insert(p.clone(), json!({}));
            }
            nop(&format!("VOLUME [{}]", paths.join(" ")))
        }
        Instruction::User(u) => {
            state.container().user = Some(u.clone());
            nop(&format!("USER {u}"))
        }
        Instruction::Workdir(w) => {
            let path = workdir_path(&state.workdir(), w);
            state.container().working_dir = Some(path.clone());
            nop_single(&format!("WORKDIR {path}"))
        }
        Instruction::Cmd(cl) => {
            let argv = cl.argv(&shell);
            state.container().cmd = Some(argv.clone());
            state.cmd_set = true;
            nop(&format!("CMD {}", go_list(&argv)))
        }
        Instruction::Entrypoint(cl) => {
            let argv = cl.argv(&shell);
            let cmd_set = state.cmd_set;
            let c = state.container();
            c.entrypoint = Some(argv.clone());
            if !cmd_set {
                // Docker: an ENTRYPOINT resets a CMD inherited from the base image.
                c.cmd = None;
            }
            nop(&format!("ENTRYPOINT {}", go_list(&argv)))
        }
        Instruction::Shell(v) => {
            state.container().extra.insert("Shell".into(), json!(v));
            nop(&format!("SHELL {}", go_list(v)))
        }
        Instruction::StopSignal(s) => {
            state.container().stop_signal = Some(s.clone());
            nop(&format!("STOPSIGNAL {s}"))
        }
        Instruction::Healthcheck(h) => {
            let test = h.test();
            let mut v = serde_json::Map::new();
            v.insert("Test".into(), json!(test));
            if let Healthcheck::Cmd {
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
                ..
            } = h
            {
                let ns = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as u64);
                for (k, d) in [
                    ("Interval", ns(interval)),
                    ("Timeout", ns(timeout)),
                    ("StartPeriod", ns(start_period)),
                    ("StartInterval", ns(start_interval)),
                ] {
                    if let Some(d) = d {
                        v.insert(k.into(), json!(d));
                    }
                }
                if let Some(r) = retries {
                    v.insert("Retries".into(), json!(r));
                }
            }
            state
                .container()
                .extra
                .insert("Healthcheck".into(), Value::Object(v));
            nop(&format!("HEALTHCHECK {}", go_list(&test)))
        }
        Instruction::Onbuild(o) => {
            let c = state.container();
            let list = c.extra.entry("OnBuild".to_string()).or_insert(json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            if let Value::Array(a) = list {
                a.push(json!(o.expression));
            }
            nop(&format!("ONBUILD {}", o.expression))
        }
        Instruction::Arg(decls) => {
            let shown: Vec<String> = decls
                .iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={v}", d.name),
                    None => d.name.clone(),
                })
                .collect();
            nop(&format!("ARG {}", shown.join(" ")))
        }
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::From(_) => {
            return Ok(None);
        }
    }))
}

fn kv(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// WORKDIR `w` relative to the current `cwd`, cleaned (`.`/`..` resolved).
pub fn workdir_path(cwd: &str, w: &str) -> String {
    let joined = if w.starts_with('/') {
        w.to_string()
    } else {
        format!("{cwd}/{w}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `80` -> `80/tcp`, `53/udp` stays, `8000-8002` -> three ports.
fn expand_port(p: &str) -> Result<Vec<String>, String> {
    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let bad = || format!("invalid port in EXPOSE: {p:?}");
    let (lo, hi) = match port.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let n = port.parse::<u16>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_and_ports() {
        assert_eq!(workdir_path("/a", "b/../c"), "/a/c");
        assert_eq!(workdir_path("/a", "/x/"), "/x");
        assert_eq!(expand_port("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expand_port("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(expand_port("1-3").unwrap().len(), 3);
        assert!(expand_port("x").is_err());
    }
}
