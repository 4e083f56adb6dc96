//! Running a container's bundle with `runc` instead of the built-in runtime
//! (`--runtime runc`), to compare the two on the same bundle.
//!
//! runc keeps no exit codes, so a detached container is run by a small watcher
//! process (conmon's job in podman): it runs `runc run` in the foreground with output
//! to the container's log and writes the exit code to `exit.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, IoContext, Result};

/// `runc --root ROOT` for one store.
#[derive(Debug, Clone)]
pub struct Runc {
    root: PathBuf,
}

/// What `runc state` reports, reduced to what imagectl uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuncState {
    /// created, running, paused or stopped.
    pub status: String,
    /// Host pid of the container process.
    pub pid: i32,
}

impl Runc {
    /// runc with its state under `root` (`ROOT/runc`).
    pub fn new(root: PathBuf) -> Runc {
        Runc { root }
    }

    /// The `runc` command with `--root`.
    pub fn command(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(&self.root);
        c
    }

    fn quiet(&self, args: &[&str]) -> Result<()> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .at("runc")?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "runc {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// The container's state, `None` when runc does not know it.
    pub fn state(&self, id: &str) -> Option<RuncState> {
        let out = self
            .command()
            .args(["state", id])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(RuncState {
            status: v["status"].as_str().unwrap_or("").to_string(),
            pid: v["pid"].as_i64().unwrap_or(0) as i32,
        })
    }

    /// Runs the bundle in the foreground with the caller's stdio; returns runc's exit
    /// status, which is the container's (128+N for signal N).
    /// With `process.terminal` set, runc allocates the pseudo-terminal and relays it.
    pub fn run_foreground(&self, id: &str, bundle: &Path) -> Result<i32> {
        let _ = self.quiet(&["delete", "-f", id]);
        let mut c = self.command();
        c.arg("run").arg("--bundle").arg(bundle).arg(id);
        let st = c.status().at("runc")?;
        let code = st
            .code()
            .or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                st.signal().map(|s| 128 + s)
            })
            .unwrap_or(255);
        let _ = self.quiet(&["delete", "-f", id]);
        Ok(code)
    }

    /// Sends a signal (a name such as `TERM` or `KILL`); `all` signals every process.
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<()> {
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.push(id);
        args.push(signal);
        self.quiet(&args)
    }

    /// Freezes the container.
    pub fn pause(&self, id: &str) -> Result<()> {
        self.quiet(&["pause", id])
    }

    /// Thaws it.
    pub fn resume(&self, id: &str) -> Result<()> {
        self.quiet(&["resume", id])
    }

    /// Deletes runc's state (killing the container first when `force`).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        if self.state(id).is_none() {
            return Ok(());
        }
        if force {
            self.quiet(&["delete", "-f", id])
        } else {
            self.quiet(&["delete", id])
        }
    }
}

/// Looks up the bundle's `process.args[0]` in the rootfs with the process's `PATH`,
/// as the built-in runtime does, so a missing executable under runc also gives
/// docker's exit code 127 ("executable file not found") or 126 (not executable)
/// instead of runc's generic 1.
pub fn check_executable(bundle: &Path, rootfs: &Path) -> std::result::Result<(), (i32, String)> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(spec) = oci_spec::runtime::Spec::load(bundle.join("config.json")) else {
        return Ok(()); // runc reports a broken bundle itself
    };
    let Some(process) = spec.process().as_ref() else {
        return Ok(());
    };
    let Some(cmd) = process.args().as_ref().and_then(|a| a.first()).cloned() else {
        return Ok(());
    };
    let env = process.env().clone().unwrap_or_default();
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![PathBuf::from(&cmd)]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(runtime::linux::process::DEFAULT_PATH);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(&cmd))
            .collect()
    };
    let mut denied = false;
    for c in candidates {
        let Ok(p) = runtime::paths::secure_join(rootfs, &c) else {
            continue;
        };
        match std::fs::metadata(&p) {
            Ok(md) if md.is_file() && md.permissions().mode() & 0o111 != 0 => return Ok(()),
            Ok(_) => denied = true,
            Err(_) => {}
        }
    }
    if denied {
        Err((126, format!("exec: \"{cmd}\": permission denied")))
    } else if cmd.contains('/') {
        Err((
            127,
            format!("exec: \"{cmd}\": executable file not found: no such file or directory"),
        ))
    } else {
        Err((
            127,
            format!("exec: \"{cmd}\": executable file not found in $PATH"),
        ))
    }
}
