//! Dockerfile builds (issue 5): `imagectl build`.
//!
//! [`build`] reads the Dockerfile with [`crate::dockerfile`], works out which stages the
//! target needs ([`plan`]), and runs each stage step by step (the private `builder`
//! module, over a [`stage::StageState`]):
//!
//! - FROM starts from a stored image, an earlier stage or `scratch`, and fires the base
//!   image's ONBUILD triggers;
//! - RUN runs in a container of the project's runtime over a union mount of the layers
//!   so far plus a fresh upper ([`steps::run`], [`mounts`]); COPY/ADD resolve their
//!   destination in such a mount and write into its upper ([`steps::copy`]); the upper
//!   becomes the step's layer;
//! - everything else changes the config only ([`steps::meta`]) and adds an
//!   `empty_layer` history entry ([`history`] writes `created_by` as docker does).
//!
//! Every step is looked up in the [`cache`] first (parent image ID + expanded
//! instruction + ARG/ENV in effect + COPY/ADD source checksums); a hit reuses the stored
//! snapshot. Each snapshot is a manifest marked as a cache entry and kept alive by a
//! store hold named `build-cache-<key>`, so the cache outlives untagging the final image
//! without blocking `rmi` of it (the tagged image's manifest is a different one);
//! `imagectl builder prune` ([`cache::Cache::prune`]) drops it.
//!
//! Output ([`output`]) follows docker's classic builder: `Step N/M : ...`,
//! ` ---> Using cache`, ` ---> <id>`, the RUN output live, then the total time.

mod builder;
pub mod cache;
pub mod context;
pub mod history;
pub mod mounts;
pub mod output;
pub mod plan;
pub mod stage;
pub mod steps;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use builder::Builder;
use cache::Cache;
use context::Context;
use output::Output;
use plan::{global_declares, needed_stages, platform_args};
use stage::StageState;

use crate::dockerfile::{self, ParseError};
use crate::error::Error;
use crate::reference::Reference;
use crate::store::{Image, Store};

/// What `imagectl build` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: `CONTEXT/Dockerfile`; `-` reads it from stdin).
    pub dockerfile: Option<PathBuf>,
    /// Names to tag the result with.
    pub tags: Vec<Reference>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to stop at (default: the last).
    pub target: Option<String>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--explain-cache`: say why each miss missed.
    pub explain_cache: bool,
    /// `-q`: print only the image ID.
    pub quiet: bool,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store, the context or a layer operation failed.
    #[error(transparent)]
    Store(#[from] Error),
    /// The Dockerfile does not parse.
    #[error("Dockerfile {0}")]
    Parse(ParseError),
    /// A step failed before or while running.
    #[error("Dockerfile line {line}: {text}: {message}")]
    Step {
        /// The instruction's first line.
        line: usize,
        /// The instruction as written.
        text: String,
        /// What went wrong.
        message: String,
    },
    /// A RUN exited non-zero (docker's wording).
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as history would show it.
        command: String,
        /// Its exit code.
        code: i32,
    },
    /// The command line asked for something impossible (unknown target...).
    #[error("{0}")]
    Usage(String),
    /// The build was interrupted (SIGINT/SIGTERM) between steps.
    #[error("build interrupted")]
    Interrupted,
}

impl From<ParseError> for BuildError {
    fn from(e: ParseError) -> Self {
        BuildError::Parse(e)
    }
}

impl BuildError {
    /// The exit code `imagectl build` ends with: a failed RUN's own code, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::RunFailed { code, .. } if (1..=255).contains(code) => *code,
            BuildError::Interrupted => 130,
            _ => 1,
        }
    }
}

/// Set by [`cancel`] (from a signal handler): the build stops before its next step,
/// releasing its mounts and temp dirs on the way out.
static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Asks a running build to stop at the next step boundary. Async-signal-safe (one
/// atomic store), so a SIGINT/SIGTERM handler may call it.
pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Result of a successful build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The final image, as stored.
    pub image: Image,
    /// Wall-clock time of the whole build.
    pub elapsed: std::time::Duration,
}

/// Builds the image `opts` describes and tags it; prints the build's progress.
pub fn build(store: &Store, opts: &BuildOptions) -> Result<Built, BuildError> {
    let started = Instant::now();
    let out = Output { quiet: opts.quiet };
    let df_path = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = if df_path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        fs::read_to_string(&df_path)
    }
    .map_err(|e| Error::Io {
        path: df_path.clone(),
        source: e,
    })?;
    let df = dockerfile::parse(&text)?;
    for w in &df.warnings {
        eprintln!("warning: {w}");
    }
    let ctx = Context::open(&opts.context)?;
    let _content = store.content_lock()?;
    let mut global = platform_args();
    global.extend(
        df.global_arg_values(&opts.build_args)
            .map_err(|e| BuildError::Usage(format!("global ARG: {e}")))?,
    );
    let target = match &opts.target {
        Some(t) => df
            .stage_index(t)
            .ok_or_else(|| BuildError::Usage(format!("target stage {t:?} could not be found")))?,
        None => df.stages.len() - 1,
    };
    let needed = needed_stages(&df, target, &global);
    let total = needed
        .iter()
        .map(|i| 1 + df.stages[*i].instructions.len())
        .sum();
    let mut b = Builder {
        store,
        cache: Cache::open(store)?,
        ctx,
        lex: df.lexer(),
        df: &df,
        global,
        opts,
        out,
        finished: vec![None; df.stages.len()],
        used_args: BTreeSet::new(),
        step: 0,
        total,
    };
    for i in needed {
        let st = b.build_stage(i)?;
        b.finished[i] = Some(st);
    }
    let state = b.finished[target]
        .take()
        .ok_or_else(|| BuildError::Usage("the target stage was not built".into()))?;
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !b.used_args.contains(*k) && !global_declares(&df, k))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        eprintln!(
            "[Warning] One or more build-args [{}] were not consumed",
            names.join(" ")
        );
    }
    if CANCELLED.load(Ordering::SeqCst) {
        return Err(BuildError::Interrupted);
    }
    let image = commit(store, &state, &opts.tags)?;
    let elapsed = started.elapsed();
    out.line(&format!("Successfully built {}", image.id().short()));
    for t in &opts.tags {
        out.line(&format!("Successfully tagged {}", t.familiar()));
    }
    out.line(&format!("Build finished in {:.2}s", elapsed.as_secs_f64()));
    if opts.quiet {
        println!("{}", image.id());
    }
    Ok(Built { image, elapsed })
}

/// Stores the final config and layers as an image with every tag.
fn commit(store: &Store, state: &StageState, tags: &[Reference]) -> Result<Image, Error> {
    let image = store.commit_image(&state.config, &state.layers, tags.first())?;
    for t in tags.iter().skip(1) {
        store.register_manifest(&image.manifest_descriptor, Some(t))?;
    }
    store.load_image(&image.manifest_descriptor)
}
