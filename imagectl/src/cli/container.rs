//! Container commands: create, start, run, ps, stop, kill, pause, unpause, rm, exec,
//! logs, diff, commit, export, and `container ls|inspect`. Parsing and printing only;
//! the work is in `imagectl::container`.
//!
//! Exit codes follow docker: `run`/`start -a`/`exec` exit with the container's code,
//! and 125 when imagectl itself fails (bad flags, missing image, mount failure).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::format::{ellipsis, print_table, render_template};
use imagectl::container::changes;
use imagectl::container::commit::CommitOptions;
use imagectl::container::record::{ContainerRecord, RuntimeKind};
use imagectl::container::state::{LiveState, Status};
use imagectl::container::{Containers, CreateRequest, ProcessOptions};
use imagectl::store::Store;

/// Exit code for errors of imagectl itself (docker's 125).
pub const EXIT_IMAGECTL_ERROR: i32 = 125;

/// The container commands (flattened into the top level, as docker has them).
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create a container (mount its root filesystem, write its bundle) without starting it.
    Create(Box<CreateArgs>),
    /// Start stopped or created containers.
    Start(StartArgs),
    /// Create and start a container.
    Run(Box<RunArgs>),
    /// List containers.
    Ps(PsArgs),
    /// Stop running containers (stop signal, then SIGKILL after the timeout).
    Stop(StopArgs),
    /// Send a signal to running containers.
    Kill(KillArgs),
    /// Freeze every process of containers.
    Pause(NamesArgs),
    /// Thaw paused containers.
    Unpause(NamesArgs),
    /// Remove containers (their writable layer; anonymous volumes with -v).
    Rm(RmArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Print a container's output.
    Logs(LogsArgs),
    /// List the files a container changed (A added, C changed, D deleted).
    Diff(OneArgs),
    /// Make an image from a container's changes.
    Commit(CommitArgs),
    /// Write a container's root filesystem as a tar.
    Export(ExportArgs),
    /// Container commands by group (ls, inspect, ...).
    #[command(subcommand)]
    Container(ContainerGroup),
}

/// `imagectl container ...`.
#[derive(Debug, Subcommand)]
pub enum ContainerGroup {
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Show containers' details as JSON (docker's field names).
    Inspect(InspectArgs),
    /// Remove containers.
    Rm(RmArgs),
}

/// Options of `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to take it from here).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file (one KEY=VALUE a line).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Override the image's ENTRYPOINT ("" clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mount or volume: HOST:CTR[:ro], NAME:CTR[:ro] or CTR.
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Hostname.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit (bytes, or with b, k, m, g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Maximum number of processes.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Network: `none` (loopback only, the default) or `host`.
    #[arg(long, default_value = "none")]
    pub network: String,
    /// OCI runtime: `ctr-runtime` (built in, the default) or `runc`.
    #[arg(long, default_value = "ctr-runtime")]
    pub runtime: String,
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Image name or ID.
    pub image: String,
    /// Command and arguments (replace the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Everything `create` takes.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the output and wait (exit with the container's code).
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach stdin.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// All containers (default: running ones).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only the latest created container.
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Only IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Commands taking containers only.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Commands taking one container.
#[derive(Debug, Args)]
pub struct OneArgs {
    /// Container.
    pub container: String,
}

/// `rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Also remove the container's anonymous volumes.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Environment variable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// User.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container.
    pub container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the output until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Container.
    pub container: String,
}

/// `commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Commit message (the history comment).
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Author.
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL,
    /// EXPOSE, VOLUME, STOPSIGNAL).
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Pause the container while committing.
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    /// Container.
    pub container: String,
    /// REPO[:TAG] for the new image.
    pub reference: Option<String>,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Container.
    pub container: String,
}

/// `container inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Template (`{{.State.Status}}`) or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Runs a container command.
pub fn run(store: &Store, cmd: ContainerCommand) -> Result<()> {
    let cs = Containers::open(store);
    match cmd {
        ContainerCommand::Create(a) => exit_125(|| {
            let rec = create(&cs, *a)?;
            println!("{}", rec.id);
            Ok(0)
        }),
        ContainerCommand::Start(a) => exit_125(|| start(&cs, a)),
        ContainerCommand::Run(a) => exit_125(|| run_container(&cs, *a)),
        ContainerCommand::Ps(a) => ps(&cs, a),
        ContainerCommand::Stop(a) => for_each(&cs, &a.containers, |cs, rec| {
            cs.stop(rec, Duration::from_secs(a.time))?;
            Ok(())
        }),
        ContainerCommand::Kill(a) => {
            for_each(&cs, &a.containers, |cs, rec| Ok(cs.kill(rec, &a.signal)?))
        }
        ContainerCommand::Pause(a) => {
            for_each(&cs, &a.containers, |cs, rec| Ok(cs.set_paused(rec, true)?))
        }
        ContainerCommand::Unpause(a) => {
            for_each(&cs, &a.containers, |cs, rec| Ok(cs.set_paused(rec, false)?))
        }
        ContainerCommand::Rm(a) => rm(&cs, a),
        ContainerCommand::Exec(a) => exit_125(|| exec(&cs, a)),
        ContainerCommand::Logs(a) => {
            let rec = cs.find(&a.container)?;
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            cs.logs(&rec, a.follow, &mut lock)?;
            Ok(())
        }
        ContainerCommand::Diff(a) => diff(&cs, a),
        ContainerCommand::Commit(a) => commit(&cs, a),
        ContainerCommand::Export(a) => export(&cs, a),
        ContainerCommand::Container(g) => match g {
            ContainerGroup::Ls(a) => ps(&cs, a),
            ContainerGroup::Inspect(a) => inspect(&cs, a),
            ContainerGroup::Rm(a) => rm(&cs, a),
        },
    }
}

/// Runs `f` and exits with its code, or prints the error and exits with 125.
fn exit_125(f: impl FnOnce() -> Result<i32>) -> ! {
    use std::io::Write;
    let code = match f() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("imagectl: {e:#}");
            EXIT_IMAGECTL_ERROR
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// Applies `f` to each named container, printing its name as docker does; the first
/// error is reported after trying them all.
fn for_each(
    cs: &Containers,
    names: &[String],
    f: impl Fn(&Containers, &ContainerRecord) -> Result<()>,
) -> Result<()> {
    let mut failed = Vec::new();
    for n in names {
        match cs
            .find(n)
            .map_err(anyhow::Error::from)
            .and_then(|r| f(cs, &r))
        {
            Ok(()) => println!("{n}"),
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(failed.join("\n")))
    }
}

/// Parses `64m`, `1g`, `512k`, `100` (bytes), as docker does.
fn parse_memory(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|x| !x.is_empty()).unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("invalid memory size {s:?}: use a number with b, k, m or g"))?;
    if n <= 0.0 {
        bail!("invalid memory size {s:?}: must be positive");
    }
    Ok((n * mult as f64) as i64)
}

/// `-e KEY=VALUE`, `-e KEY` (from this environment, skipped when unset), and env files.
fn collect_env(a: &CreateArgs) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |e: &str| {
        if e.contains('=') {
            out.push(e.to_string());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
    };
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading env file {}", f.display()))?;
        for line in text.lines() {
            let l = line.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            push(l);
        }
    }
    for e in &a.env {
        if e.starts_with('=') || e.is_empty() {
            bail!("invalid environment variable {e:?}");
        }
        push(e);
    }
    Ok(out)
}

fn request(a: &CreateArgs) -> Result<CreateRequest> {
    let network_host = match a.network.as_str() {
        "host" => true,
        "none" | "private" | "bridge" | "default" => false,
        other => bail!("network {other:?} is not supported: use none (loopback only) or host"),
    };
    let runtime = match a.runtime.as_str() {
        "ctr-runtime" | "builtin" | "imagectl" => RuntimeKind::Builtin,
        "runc" => RuntimeKind::Runc,
        other => bail!("unknown runtime {other:?}: use ctr-runtime or runc"),
    };
    Ok(CreateRequest {
        image: a.image.clone(),
        name: a.name.clone(),
        process: ProcessOptions {
            cmd: a.command.clone(),
            entrypoint: a.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                }
            }),
            env: collect_env(a)?,
            workdir: a.workdir.clone(),
            user: a.user.clone(),
            hostname: a.hostname.clone(),
            tty: a.tty,
            binds: Vec::new(),
            memory: a.memory.as_deref().map(parse_memory).transpose()?,
            pids_limit: a.pids_limit,
            network_host,
        },
        volumes: a.volume.clone(),
        interactive: a.interactive,
        runtime,
        auto_remove: a.rm,
    })
}

fn create(cs: &Containers, a: CreateArgs) -> Result<ContainerRecord> {
    let req = request(&a)?;
    let rec = cs.create(&req).map_err(|e| match e {
        imagectl::Error::NoSuchImage(i) => {
            anyhow!("no such image: {i} (pull, load or import it first)")
        }
        e => e.into(),
    })?;
    // `create` prints the ID; `run` prints it only when detached.
    Ok(rec)
}

/// Points stdin at /dev/null (docker's behaviour without `-i`).
fn close_stdin() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::File::open("/dev/null") {
        // SAFETY: dup2 onto fd 0 of this process.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
}

fn run_container(cs: &Containers, a: RunArgs) -> Result<i32> {
    let interactive = a.create.interactive;
    let rec = create(cs, a.create)?;
    if a.detach {
        if let Err(e) = cs.start_detached(&rec) {
            if rec.auto_remove {
                let _ = cs.remove(&rec, true, true);
            }
            return Err(e.into());
        }
        println!("{}", rec.id);
        return Ok(0);
    }
    if !interactive {
        close_stdin();
    }
    match cs.start_attached(&rec) {
        Ok(code) => Ok(code),
        Err(e) => {
            if rec.auto_remove {
                let _ = cs.remove(&rec, true, true);
            } else {
                let _ = cs.root_of(&rec).unmount();
            }
            Err(e.into())
        }
    }
}

fn start(cs: &Containers, a: StartArgs) -> Result<i32> {
    if a.attach {
        if a.containers.len() != 1 {
            bail!("start -a takes exactly one container");
        }
        let rec = cs.find(&a.containers[0])?;
        if !a.interactive {
            close_stdin();
        }
        return Ok(cs.start_attached(&rec)?);
    }
    for_each(cs, &a.containers, |cs, rec| {
        if cs.state(rec).status == Status::Running {
            return Ok(());
        }
        Ok(cs.start_detached(rec)?)
    })?;
    Ok(0)
}

fn exec(cs: &Containers, a: ExecArgs) -> Result<i32> {
    let rec = cs.find(&a.container)?;
    if !a.interactive {
        close_stdin();
    }
    let opts = runtime::ExecOptions {
        args: a.command,
        env: a.env,
        cwd: a.workdir.map(PathBuf::from),
        user: a.user,
        tty: a.tty,
        detach: a.detach,
    };
    Ok(cs.exec(&rec, &opts)?)
}

fn rm(cs: &Containers, a: RmArgs) -> Result<()> {
    for_each(cs, &a.containers, |cs, rec| {
        Ok(cs.remove(rec, a.force, a.volumes)?)
    })
}

/// docker's `HumanDuration`: "Less than a second", "3 seconds", "About a minute", ...
pub fn human_duration(secs: u64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 7 * 24 * 3600 * 2 => format!("{} days", s / (24 * 3600)),
        s if s < 30 * 24 * 3600 * 2 => format!("{} weeks", s / (7 * 24 * 3600)),
        s if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 24 * 3600)),
        s => format!("{} years", s / (365 * 24 * 3600)),
    }
}

fn now_secs() -> u64 {
    runtime::state::now()
}

/// The STATUS column.
fn status_text(st: &LiveState) -> String {
    let since = |t: Option<u64>| human_duration(now_secs().saturating_sub(t.unwrap_or(0)));
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(st.started)),
        Status::Paused => format!("Up {} (Paused)", since(st.started)),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code.unwrap_or(state_unknown()),
            since(st.finished)
        ),
    }
}

fn state_unknown() -> i32 {
    imagectl::container::state::EXIT_UNKNOWN
}

fn quote_command(rec: &ContainerRecord) -> String {
    std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(|s| s.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ps(cs: &Containers, a: PsArgs) -> Result<()> {
    let mut list: Vec<(ContainerRecord, LiveState)> = cs
        .records()
        .list()?
        .into_iter()
        .map(|r| {
            let st = cs.reconcile(&r);
            (r, st)
        })
        .collect();
    if a.latest {
        list = list.into_iter().last().into_iter().collect();
    } else if !a.all {
        list.retain(|(_, st)| st.status.is_live());
    }
    list.reverse(); // newest first, as docker lists
    // No PORTS column: containers get no published ports (loopback-only or host network).
    if a.quiet {
        for (r, _) in &list {
            println!("{}", if a.no_trunc { &r.id[..] } else { &r.id[..12] });
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|(r, st)| {
            let cmd = format!("\"{}\"", quote_command(r));
            vec![
                if a.no_trunc {
                    r.id.clone()
                } else {
                    r.id[..12].to_string()
                },
                r.image.clone(),
                if a.no_trunc { cmd } else { ellipsis(&cmd, 20) },
                super::format::time_ago(Some(&r.created)),
                status_text(st),
                r.name.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &rows,
    );
    Ok(())
}

fn rfc3339(t: Option<u64>) -> String {
    match t.and_then(|s| chrono::DateTime::from_timestamp(s as i64, 0)) {
        Some(d) => d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// The container's `inspect` document (docker's field names).
pub fn inspect_value(cs: &Containers, rec: &ContainerRecord) -> Value {
    let st = cs.reconcile(rec);
    let root = cs.root_of(rec);
    let lower: Vec<String> = rec.lowers.iter().map(|p| p.display().to_string()).collect();
    let dir = cs.dir(rec);
    json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": st.status.as_str(),
            "Running": st.status.is_live(),
            "Paused": st.status == Status::Paused,
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": st.pid,
            "ExitCode": st.exit_code.unwrap_or(0),
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": rfc3339(st.started),
            "FinishedAt": rfc3339(st.finished),
        },
        "Image": rec.image_id.to_string(),
        "ResolvConfPath": "",
        "HostnamePath": "",
        "LogPath": dir.join("log").display().to_string(),
        "Name": format!("/{}", rec.name),
        "Driver": "unionfsd",
        "Platform": "linux",
        "HostConfig": {
            "Runtime": rec.runtime.name(),
            "AutoRemove": rec.auto_remove,
            "NetworkMode": if rec.network_host { "host" } else { "none" },
            "Binds": rec.mounts.iter().filter(|m| m.kind == "bind").map(|m| {
                format!("{}:{}{}", m.source.display(), m.destination.display(), if m.rw { "" } else { ":ro" })
            }).collect::<Vec<_>>(),
        },
        "GraphDriver": {
            "Name": "unionfsd",
            "Data": {
                "LowerDir": lower.join(":"),
                "UpperDir": root.upper.display().to_string(),
                "WorkDir": root.work.display().to_string(),
                "MergedDir": root.merged.display().to_string(),
            }
        },
        "Mounts": rec.mounts.iter().map(|m| json!({
            "Type": m.kind,
            "Name": m.name,
            "Source": m.source,
            "Destination": m.destination,
            "Driver": if m.kind == "volume" { "local" } else { "" },
            "Mode": if m.rw { "" } else { "ro" },
            "RW": m.rw,
            "Propagation": if m.kind == "bind" { "rprivate" } else { "" },
        })).collect::<Vec<_>>(),
        "Config": rec.config,
    })
}

fn inspect(cs: &Containers, a: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for n in &a.containers {
        match cs.find(n) {
            Ok(r) => out.push(inspect_value(cs, &r)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    print_inspect(&out, a.format.as_deref())?;
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    Ok(())
}

fn print_inspect(values: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&values)?),
        Some(t) => {
            for v in values {
                println!("{}", render_template(t, v)?);
            }
        }
    }
    Ok(())
}

/// Top-level `inspect NAME...`: containers when every name is a container, else images
/// (docker looks names up in both).
pub fn inspect_any(store: &Store, a: super::images::InspectArgs) -> Result<()> {
    let cs = Containers::open(store);
    let recs: Vec<ContainerRecord> = a.images.iter().filter_map(|n| cs.find(n).ok()).collect();
    if !recs.is_empty() && recs.len() == a.images.len() {
        let values: Vec<Value> = recs.iter().map(|r| inspect_value(&cs, r)).collect();
        return print_inspect(&values, a.format.as_deref());
    }
    super::images::inspect(store, a)
}

fn diff(cs: &Containers, a: OneArgs) -> Result<()> {
    let rec = cs.find(&a.container)?;
    let root = cs.root_of(&rec);
    for c in changes::changes(&root.upper, &rec.lowers)? {
        println!("{} {}", c.kind.letter(), c.path.display());
    }
    Ok(())
}

fn commit(cs: &Containers, a: CommitArgs) -> Result<()> {
    let rec = cs.find(&a.container)?;
    cs.reconcile(&rec);
    let img = cs.commit(
        &rec,
        &CommitOptions {
            message: a.message,
            author: a.author,
            changes: a.change,
            pause: a.pause,
            reference: a.reference,
        },
    )?;
    println!("{}", img.id());
    Ok(())
}

fn export(cs: &Containers, a: ExportArgs) -> Result<()> {
    let rec = cs.find(&a.container)?;
    match &a.output {
        Some(p) => {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
                .with_context(|| format!("creating {}", p.display()))?;
            let f = cs.export(&rec, std::io::BufWriter::new(tmp))?;
            let tmp = f
                .into_inner()
                .map_err(|e| anyhow!("writing {}: {}", p.display(), e.error()))?;
            tmp.as_file().sync_all()?;
            tmp.persist(p)
                .map_err(|e| anyhow!("writing {}: {}", p.display(), e.error))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write a tar to a terminal: use -o FILE or redirect the output");
            }
            let out = std::io::stdout();
            let w = cs.export(&rec, std::io::BufWriter::new(out.lock()))?;
            let _lock = w
                .into_inner()
                .map_err(|e| anyhow!("writing the tar: {}", e.error()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_and_durations() {
        assert_eq!(parse_memory("64m").unwrap(), 64 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("512").unwrap(), 512);
        assert_eq!(parse_memory("10kb").unwrap(), 10 << 10);
        assert!(parse_memory("lots").is_err());
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(7200), "2 hours");
    }
}
