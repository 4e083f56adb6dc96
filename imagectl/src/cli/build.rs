//! `imagectl build` (a Dockerfile build with a layer cache) and `imagectl dockerfile
//! parse FILE`, which shows how the builder reads a Dockerfile, in the reference
//! parser's dump notation, so a user can check what was understood before building.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use imagectl::build::{BuildError, BuildOptions};
use imagectl::dockerfile;
use imagectl::{Reference, Store};

/// `imagectl build [OPTIONS] CONTEXT`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name (and optionally tag) of the image, `NAME[:TAG]`; repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; - reads it from stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A build argument `KEY=VALUE` (or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build up to this stage (name or number) and tag it.
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, ignoring the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// For each cache miss, print what changed against the closest cached step.
    #[arg(long)]
    pub explain_cache: bool,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// The build context directory.
    pub context: PathBuf,
}

extern "C" fn on_interrupt(_: libc::c_int) {
    imagectl::build::cancel();
}

/// SIGINT/SIGTERM/SIGHUP stop the build at the next step instead of killing it with
/// union mounts still up. (During a RUN the runtime passes them to the container.)
fn install_interrupt_handler() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { sigaction(sig, &action) } {
            log::debug!("installing the {sig} handler: {e}");
        }
    }
}

/// `imagectl builder ...`.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache (every cached step; layers no image uses are freed).
    Prune,
}

/// Runs a `builder` subcommand.
pub fn builder(store: &Store, c: BuilderCommand) -> Result<()> {
    match c {
        BuilderCommand::Prune => {
            let cache = imagectl::build::cache::Cache::open(store)?;
            let (n, report) = cache.prune(store)?;
            println!("Deleted build cache records: {n}");
            println!(
                "Total reclaimed space: {}",
                super::format::human_size(report.bytes)
            );
            Ok(())
        }
    }
}

/// Runs a build. A failed RUN ends the process with the command's exit code.
pub fn build(store: &Store, a: BuildArgs) -> Result<()> {
    let mut tags = Vec::new();
    for t in &a.tags {
        let r = Reference::parse(t).with_context(|| format!("invalid tag {t:?}"))?;
        if r.digest.is_some() {
            bail!("invalid tag {t:?}: a tag cannot name a digest");
        }
        tags.push(r);
    }
    let mut build_args = BTreeMap::new();
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(kv) {
                    build_args.insert(kv.clone(), v);
                }
            }
        }
    }
    let opts = BuildOptions {
        context: a.context,
        dockerfile: a.file,
        tags,
        build_args,
        target: a.target,
        no_cache: a.no_cache,
        explain_cache: a.explain_cache,
        quiet: a.quiet,
    };
    install_interrupt_handler();
    match imagectl::build::build(store, &opts) {
        Ok(_) => Ok(()),
        Err(e @ (BuildError::RunFailed { .. } | BuildError::Interrupted)) => {
            // Everything the build held (mounts, temp dirs, the content lock) has been
            // released by now: exit with the failed command's code, as docker reports it.
            eprintln!("imagectl: {e}");
            std::process::exit(e.exit_code());
        }
        Err(e) => Err(e.into()),
    }
}

/// `imagectl dockerfile ...`.
#[derive(Debug, Subcommand)]
pub enum DockerfileCommand {
    /// Print how the builder reads FILE (`-` for stdin): one `(keyword ...)` per
    /// instruction, as the reference parser's dump prints it.
    Parse {
        /// The Dockerfile.
        file: PathBuf,
    },
}

/// Runs a `dockerfile` subcommand.
pub fn dockerfile(c: DockerfileCommand) -> Result<()> {
    match c {
        DockerfileCommand::Parse { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let df =
                dockerfile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for w in &df.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", df.dump());
            Ok(())
        }
    }
}
