//! `ctr-runtime`: a runc-like command line over the runtime library, so that the
//! same OCI bundle can be run by this runtime and by runc and the results compared.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use runtime::config::generate::{ContainerConfig, generate};
use runtime::{CreateOptions, ExecOptions, Output, Runtime, Status};

#[derive(Parser)]
#[command(
    name = "ctr-runtime",
    version,
    about = "A small OCI runtime (runc-like CLI)"
)]
struct Cli {
    /// Directory holding the containers' state.
    #[arg(long, global = true, default_value = runtime::DEFAULT_ROOT)]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Options shared by `create` and `run`.
#[derive(clap::Args)]
struct BundleArgs {
    /// The bundle directory (config.json + rootfs).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's PID 1 host pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// runc-style console socket: receives the pty master when the process has a terminal.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Where a detached container's stdout/stderr go (default: its state dir's container.log).
    #[arg(long)]
    log_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container; its process waits for `start`.
    Create {
        /// Container id.
        id: String,
        #[command(flatten)]
        bundle: BundleArgs,
    },
    /// Start a created container's process.
    Start {
        /// Container id.
        id: String,
    },
    /// Create and start a container (in the foreground unless --detach).
    Run {
        /// Container id.
        id: String,
        #[command(flatten)]
        bundle: BundleArgs,
        /// Return once the process runs; output goes to the log file.
        #[arg(short, long)]
        detach: bool,
        /// Give the process a pseudo-terminal (overrides config.json).
        #[arg(short, long)]
        tty: bool,
        /// Keep the stopped container instead of deleting it after a foreground run.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State {
        /// Container id.
        id: String,
    },
    /// List containers.
    List {
        /// Only print ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Send a signal to a container (default SIGTERM).
    Kill {
        /// Container id.
        id: String,
        /// Signal name or number.
        #[arg(default_value = "TERM")]
        signal: String,
        /// Signal every process of the container, not just PID 1.
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a stopped container (or any with --force).
    Delete {
        /// Container id.
        id: String,
        /// Kill it first if it still runs.
        #[arg(short, long)]
        force: bool,
    },
    /// Run another process in a running container.
    Exec {
        /// Container id.
        id: String,
        /// Allocate a pseudo-terminal.
        #[arg(short, long)]
        tty: bool,
        /// Return once the process runs.
        #[arg(short, long)]
        detach: bool,
        /// Extra environment variables (KEY=VALUE).
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// Working directory.
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// User: name, uid, name:group or uid:gid (resolved in the container).
        #[arg(short, long)]
        user: Option<String>,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// List the host pids of a container's processes.
    Ps {
        /// Container id.
        id: String,
        /// `table` or `json`.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Freeze every process of a container.
    Pause {
        /// Container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// Container id.
        id: String,
    },
    /// Stop a container: SIGNAL, then SIGKILL after the timeout (like `docker stop`).
    Stop {
        /// Container id.
        id: String,
        /// Seconds to wait before SIGKILL.
        #[arg(short, long, default_value_t = 10)]
        time: u64,
        /// The first signal.
        #[arg(short, long, default_value = "TERM")]
        signal: String,
    },
    /// Print a detached container's output.
    Logs {
        /// Container id.
        id: String,
        /// Keep printing new output until the container stops.
        #[arg(short, long)]
        follow: bool,
    },
    /// Wait for a container to stop and exit with its exit code.
    Wait {
        /// Container id.
        id: String,
    },
    /// Write a default config.json into a bundle directory (like `runc spec`).
    Spec {
        /// The bundle directory.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// The process arguments (default: sh).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
}

fn create_opts(b: &BundleArgs, terminal: Option<bool>) -> CreateOptions {
    CreateOptions {
        bundle: b.bundle.clone(),
        pid_file: b.pid_file.clone(),
        output: b.log_file.clone().map(Output::Log).unwrap_or_default(),
        console_socket: b.console_socket.clone(),
        terminal,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("ctr-runtime: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let rt = Runtime::new(&cli.root);
    match cli.cmd {
        Cmd::Create { id, bundle } => {
            rt.create(&id, &create_opts(&bundle, None))
                .with_context(|| format!("create {id}"))?;
        }
        Cmd::Start { id } => rt.start(&id).with_context(|| format!("start {id}"))?,
        Cmd::Run {
            id,
            bundle,
            detach,
            tty,
            keep,
        } => {
            let opts = create_opts(&bundle, tty.then_some(true));
            if detach {
                rt.run_detached(&id, &opts)
                    .with_context(|| format!("run {id}"))?;
            } else {
                let code = rt.run(&id, &opts).with_context(|| format!("run {id}"))?;
                if !keep {
                    rt.delete(&id, true)
                        .with_context(|| format!("delete {id}"))?;
                }
                return Ok(code);
            }
        }
        Cmd::State { id } => {
            let st = rt.state(&id)?;
            println!("{}", serde_json::to_string_pretty(&st)?);
        }
        Cmd::List { quiet } => {
            let all = rt.list()?;
            if quiet {
                for st in all {
                    println!("{}", st.id);
                }
            } else {
                println!(
                    "{:<20} {:<8} {:<8} {:<5} BUNDLE",
                    "ID", "PID", "STATUS", "EXIT"
                );
                for st in all {
                    let pid = match st.status {
                        Status::Stopped => 0,
                        _ => st.pid.unwrap_or(0),
                    };
                    let exit = st
                        .exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into());
                    println!(
                        "{:<20} {:<8} {:<8} {:<5} {}",
                        st.id,
                        pid,
                        st.status,
                        exit,
                        st.bundle.display()
                    );
                }
            }
        }
        Cmd::Kill { id, signal, all } => {
            let sig = runtime::signal::parse_signal(&signal)?;
            rt.kill(&id, sig, all)
                .with_context(|| format!("kill {id}"))?;
        }
        Cmd::Delete { id, force } => rt
            .delete(&id, force)
            .with_context(|| format!("delete {id}"))?,
        Cmd::Exec {
            id,
            tty,
            detach,
            env,
            cwd,
            user,
            command,
        } => {
            let opts = ExecOptions {
                args: command,
                env,
                cwd,
                user,
                tty,
                detach,
            };
            return rt.exec(&id, &opts).with_context(|| format!("exec in {id}"));
        }
        Cmd::Ps { id, format } => {
            let pids = rt.ps(&id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                println!("{:<8} CMD", "PID");
                for p in pids {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                        .map(|b| {
                            String::from_utf8_lossy(&b)
                                .replace('\0', " ")
                                .trim()
                                .to_string()
                        })
                        .unwrap_or_default();
                    println!("{p:<8} {cmd}");
                }
            }
        }
        Cmd::Pause { id } => rt.pause(&id).with_context(|| format!("pause {id}"))?,
        Cmd::Resume { id } => rt.resume(&id).with_context(|| format!("resume {id}"))?,
        Cmd::Wait { id } => return Ok(rt.wait(&id)?),
        Cmd::Logs { id, follow } => rt.logs(&id, follow, &mut std::io::stdout())?,
        Cmd::Stop { id, time, signal } => {
            let sig = runtime::signal::parse_signal(&signal)?;
            let code = rt
                .stop(&id, sig, std::time::Duration::from_secs(time))
                .with_context(|| format!("stop {id}"))?;
            println!("{code}");
        }
        Cmd::Spec { bundle, args } => {
            let path = bundle.join("config.json");
            if path.exists() {
                anyhow::bail!("{} exists already", path.display());
            }
            let cfg = ContainerConfig {
                rootfs: "rootfs".into(),
                args: if args.is_empty() {
                    vec!["sh".into()]
                } else {
                    args
                },
                hostname: Some("ctr".into()),
                terminal: false,
                ..Default::default()
            };
            let spec = generate(&cfg)?;
            let json = serde_json::to_vec_pretty(&spec)?;
            runtime::state::write_atomic(&path, &json)?;
        }
    }
    Ok(0)
}
