//! RUN: the command runs in a container of the project's runtime whose root is the
//! step's union mount (the stage's layers plus a fresh upper), with the stage's
//! environment, build args, user, working directory and shell, on the host network
//! (a build has no other). Output goes straight to the terminal as it comes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use runtime::config::generate::ContainerConfig;
use runtime::{CreateOptions, Output, Runtime};

use super::super::stage::StageState;
use crate::container::bundle::Bundle;
use crate::container::etc_files;
use crate::dockerfile::{CommandLine, Run, RunPlan};

/// What to execute for a RUN and what its history entry says.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The argv inside the container.
    pub argv: Vec<String>,
    /// The argv history shows (the shell form even for a heredoc script).
    pub shown: Vec<String>,
    /// A heredoc script to place at `argv[0]` first.
    pub script: Option<String>,
}

/// Where a heredoc script with a shebang is placed for its run (removed afterwards,
/// so it leaves nothing in the layer).
const SCRIPT_DIR: &str = "/.imagectl-heredoc-";

/// Decides the argv of a RUN under `shell`.
pub fn plan(run: &Run, shell: &[String]) -> Plan {
    match run.plan() {
        RunPlan::Command(cl) => {
            let argv = cl.argv(shell);
            let mut shown = argv.clone();
            if let Some(last) = shown.last_mut() {
                // A heredoc body ends in a newline; history shows one line.
                *last = last.trim_end_matches('\n').to_string();
            }
            Plan {
                shown,
                argv,
                script: None,
            }
        }
        RunPlan::Script { name, data } => Plan {
            argv: vec![format!("{SCRIPT_DIR}{name}")],
            shown: CommandLine::Shell(data.trim_end_matches('\n').to_string()).argv(shell),
            script: Some(data),
        },
    }
}

/// Whether the RUN gets the host's network (`--network=host`, `default` or none given)
/// or a namespace with only loopback (`--network=none`). Flags this builder cannot
/// honour are refused rather than ignored.
pub fn check_flags(run: &Run) -> Result<bool, String> {
    if let Some(m) = run.mounts.first() {
        return Err(format!("RUN --mount={m} is not supported by this builder"));
    }
    if let Some(s) = run.security.as_deref().filter(|s| *s != "sandbox") {
        return Err(format!(
            "RUN --security={s} is not supported by this builder"
        ));
    }
    match run.network.as_deref() {
        None | Some("default") | Some("host") => Ok(true),
        Some("none") => Ok(false),
        Some(other) => Err(format!("RUN --network={other}: want default, host or none")),
    }
}

/// How one RUN's container is run.
#[derive(Debug, Clone)]
pub struct RunOptions<'a> {
    /// The runtime's state directory.
    pub runtime_root: &'a Path,
    /// The container ID (see [`container_id`]).
    pub id: &'a str,
    /// Host network (true) or loopback only.
    pub network_host: bool,
    /// Discard the output (`-q`).
    pub quiet: bool,
}

/// Runs `plan` in a container over `merged`; returns the exit code. `scratch` is a
/// private directory outside the mount for the bundle.
pub fn execute(
    state: &StageState,
    plan: &Plan,
    merged: &Path,
    scratch: &Path,
    o: &RunOptions<'_>,
) -> Result<i32, String> {
    let workdir = state.workdir();
    let wd_host = runtime::paths::secure_join(merged, Path::new(&workdir))
        .map_err(|e| format!("WORKDIR {workdir}: {e}"))?;
    fs::create_dir_all(&wd_host).map_err(|e| format!("creating WORKDIR {workdir}: {e}"))?;
    let user = match state.user() {
        Some(u) => Some(
            runtime::user::resolve_user(merged, &u)
                .map_err(|e| format!("unable to find user {u}: {e}"))?,
        ),
        None => None,
    };
    let script_path = match &plan.script {
        Some(data) => {
            let p = merged.join(plan.argv[0].trim_start_matches('/'));
            fs::write(&p, data).map_err(|e| format!("writing heredoc script: {e}"))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("writing heredoc script: {e}"))?;
            Some(p)
        }
        None => None,
    };
    let mut env = state.env_list();
    env.extend(
        state
            .run_args()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}")),
    );
    // The step sees the host's resolver (and a hostname), as docker's RUN does; the mount
    // points it needs and the image lacks are removed again after the step.
    let stubs = etc_files::missing_stubs(merged);
    let mounts = etc_files::write(&scratch.join("etc"), o.id, o.network_host, &[])
        .map_err(|e| e.to_string())?;
    let config = ContainerConfig {
        rootfs: merged.to_path_buf(),
        args: plan.argv.clone(),
        env,
        cwd: Some(workdir),
        user,
        hostname: Some(o.id.to_string()),
        network_host: o.network_host,
        mounts,
        ..Default::default()
    };
    let bundle_dir = scratch.join("bundle");
    let bundle = Bundle::write(&bundle_dir, &config).map_err(|e| e.to_string())?;
    let rt = Runtime::new(o.runtime_root);
    let (id, quiet) = (o.id, o.quiet);
    let opts = CreateOptions {
        bundle: bundle.dir.clone(),
        output: if quiet {
            Output::Null
        } else {
            Output::DefaultLog
        },
        ..Default::default()
    };
    let result = if quiet {
        rt.run_detached(id, &opts).and_then(|_| rt.wait(id))
    } else {
        rt.run(id, &opts)
    };
    if let Err(e) = rt.delete(id, true) {
        log::debug!("build: deleting container {id}: {e}");
    }
    if let Some(p) = script_path {
        let _ = fs::remove_file(p);
    }
    etc_files::remove_stubs(&stubs);
    result.map_err(|e| format!("running the container: {e}"))
}

/// A fresh container ID for one RUN (`build-` and 12 hex digits).
pub fn container_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let d = crate::Digest::of(format!("{}-{nanos}", std::process::id()).as_bytes());
    format!("build-{}", &d.hex()[..12])
}
